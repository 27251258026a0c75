# captchaify_template_dir: an operator's pages per location; a page missing there answers 404.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block) unless defined $block->must_die;
});

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a custom block page is used, escaped placeholders and all, the reason in its message block
--- config
location /p/ { captchaify_action block; captchaify_template_dir html/tpl; }
--- user_files
>>> tpl/block.html
<p>Custom block for {{path}} {{{message_block}}}</p>
--- request
GET /p/<b>x</b>
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_headers
Cache-Control: no-store
--- response_body
<p>Custom block for /p/&lt;b&gt;x&lt;/b&gt; <p class="message" role="alert">Your browser identifies itself as an automated program, or does not identify itself, and this page is not served to programs.</p></p>



=== TEST 2: a page the template directory lacks answers 404
--- config
location /p/ { captchaify_action fight; captchaify_template_dir html/tpl; }
--- user_files
>>> tpl/block.html
<p>only a block page here</p>
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 404



=== TEST 3: a custom captcha page gets the puzzle and the signed challenge
--- config
location /p/ { captchaify_action fight; captchaify_template_dir html/tpl; }
--- user_files
>>> tpl/captcha.html
<form action="{{form_action}}" method="post"><img src="{{image_src}}"><input name="challenge" value="{{challenge}}"></form>
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_like: ^<form action="/\.captchaify/verify" method="post"><img src="data:image/png;base64,[A-Za-z0-9+/=]+"><input name="challenge" value="c2\.[A-Za-z0-9_.-]+"></form>$



=== TEST 4: the template directory is inherited, and other locations keep the built-in pages
--- config
captchaify_template_dir html/tpl;
location /p/ { captchaify_action block; }
location /q/ { captchaify_action block; captchaify_template_dir html/other; }
--- user_files
>>> tpl/block.html
server-wide
>>> other/block.html
other
--- request eval
["GET /p/", "GET /q/"]
--- more_headers
User-Agent: curl/8.5.0
--- error_code eval
[403, 403]
--- response_body eval
["server-wide\n", "other\n"]



=== TEST 5: a template directory that does not exist fails nginx -t
--- config
location /p/ { captchaify_action block; captchaify_template_dir html/nowhere; }
--- must_die
--- error_log eval
qr/"captchaify_template_dir" directive: template directory "\S+html\/nowhere" is not a readable directory in \S+nginx\.conf:\d+/



=== TEST 6: a template with an unknown placeholder fails nginx -t, naming the file
--- config
location /p/ { captchaify_action block; captchaify_template_dir html/tpl; }
--- user_files
>>> tpl/block.html
{{secret_key}}
--- must_die
--- error_log eval
qr/"captchaify_template_dir" directive: template "\S+tpl\/block\.html": unknown placeholder "secret_key" in \S+nginx\.conf:\d+/
