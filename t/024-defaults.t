# Defaults that leak nothing and fail loudly: the sources asked by default, the block page
# and log line that say why, the warning before the last try, and the warning for a proxy
# that realip was not told about. Country rules without a database: t/015-geoip.t.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block) unless defined $block->must_die;
});

our $LOCAL = "127.0.0.1";
our $FORM = "Content-Type: application/x-www-form-urlencoded\nUser-Agent: $FIREFOX";
sub answer_form { my ($token, $answer) = @_; "POST /.captchaify/verify\nchallenge=$token&answer=$answer" }
sub wrong_answers {
    my ($n, $return) = @_;
    map { answer_form(Captchaify::challenge_token(address => $LOCAL, ua => $FIREFOX,
        answer => "HXMRU4", return => $return // "/p/"), "WRONG$_") } 1 .. $n;
}
our $CAPTCHA = qr{<form[^>]+action="/\.captchaify/verify};
our $LAST_TRY = qr{<p class="message" role="alert">That was not right\. Please try this new one carefully: one more wrong answer and this site blocks your connection for a while\.</p>};

# Forty requests on one connection from 127.0.0.1 (pipelined: one request to the runner, whose
# log checks come after the last), with the X-Forwarded-For value $forwarded->($n).
sub forty_headers {
    my $forwarded = shift;
    [map { "User-Agent: $FIREFOX\nX-Forwarded-For: " . $forwarded->($_) } 1 .. 40];
}

repeat_each(1);
# Lookups and warnings land in the log in the background: every check reads the whole log.
check_accum_error_log();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: by default ip-api is not asked: a hosting address it would name passes, and no lookup leaves
--- http_config
captchaify_feed ipapi url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/json/;
captchaify_feed stopforumspam url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sfs;
captchaify_feed tor file=html/exits.txt;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /json/ { captchaify_action let; default_type application/json; }
location /sfs { captchaify_action let; }
location /c/ { captchaify_action captcha; }
--- user_files
>>> json/192.0.2.10
{"status":"success","countryCode":"NL","as":"AS64496 Example Hosting B.V.","proxy":false,"hosting":true,"query":"192.0.2.10"}
>>> exits.txt
192.0.2.66
>>> c/a.txt
content
--- wait: 1
--- request eval
["GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66",
]
--- error_code eval
[200, 200, 403]
--- response_body_like eval
[qr/\Acontent\n\z/, qr/\Acontent\n\z/, $::CAPTCHA]
--- no_error_log
GET /json/
GET /sfs



=== TEST 2: the seed's set, one line away, asks ip-api again
--- http_config
captchaify_feed ipapi url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/json/;
captchaify_feed stopforumspam url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sfs;
captchaify_feed tor file=html/exits.txt;
captchaify_third_parties tor ipapi stopforumspam;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /json/ { captchaify_action let; default_type application/json; }
location /sfs { captchaify_action let; }
location /c/ { captchaify_action captcha; }
--- user_files
>>> json/192.0.2.10
{"status":"success","countryCode":"NL","as":"AS64496 Example Hosting B.V.","proxy":false,"hosting":true,"query":"192.0.2.10"}
>>> exits.txt
192.0.2.66
>>> c/a.txt
content
--- wait: 1
--- request eval
["GET /c/a.txt", "GET /c/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
]
--- error_code eval
[200, 403]
--- response_body_like eval
[qr/\Acontent\n\z/, $::CAPTCHA]
--- error_log
GET /json/192.0.2.10



=== TEST 3: the block page says why, in the visitor's language, and the log line names the rule: an address list
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
captchaify_deny 192.0.2.0/24;
location /b/ { captchaify_action block; }
--- user_files
>>> b/a.txt
content
--- request eval
["GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.9",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 198.51.100.2",
]
--- error_code eval
[403, 200]
--- response_body_like eval
[
qr{(?s)<h1 class="danger">Access denied</h1>\n<p>This site does not serve <code>/b/a\.txt</code> to your connection\.</p>\n<p class="message" role="alert">Your address is on a list of addresses that this site does not serve},
qr/\Acontent\n\z/,
]
--- error_log
captchaify: block (deny list) (action "block")



=== TEST 3b: a client that calls itself a program, told in German; the log line names the rule
--- config
captchaify_third_parties off;
location /b/ { captchaify_action block; }
--- user_files
>>> b/a.txt
content
--- request eval
["GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
["User-Agent: curl/8.0\nAccept-Language: de", "User-Agent: curl/8.0"]
--- error_code eval
[403, 403]
--- response_body_like eval
[
qr{<p class="message" role="alert">Ihr Browser gibt sich als automatisiertes Programm aus},
qr{<p class="message" role="alert">Your browser identifies itself as an automated program, or does not identify itself},
]
--- error_log
captchaify: block (crawler user agent) (action "block")



=== TEST 4: dry run names the rule it would have applied
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
captchaify_deny 192.0.2.0/24;
location /b/ { captchaify_action block; captchaify_dry_run on; }
--- user_files
>>> b/a.txt
content
--- request
GET /b/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.9"
--- error_code: 200
--- error_log
captchaify: dry run, would block (deny list) the client (action "block")



=== TEST 5: the wrong answer before the last try warns; the last one blocks, and the block page says why
--- config
location /p/ { captchaify_action fight; captchaify_third_parties off; }
--- request eval
[::wrong_answers(3)]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 403]
--- response_body_like eval
[
qr{(?s)\A(?!.*one more wrong answer).*<p class="message" role="alert">That was not right\. Please try this new one\.</p>},
qr{(?s)$::LAST_TRY.*name="challenge" value="c2\.},
qr{<p class="message" role="alert">Too many wrong answers to the check\.},
]



=== TEST 5b: a fresh captcha (a reload) on the last try warns too; none before any wrong answer
--- config
location /p/ { captchaify_action fight; captchaify_third_parties off; }
--- request eval
["GET /p/", ::wrong_answers(2), "GET /p/"]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 403, 403]
--- response_body_like eval
[
qr{(?s)\A(?!.*role="alert").*name="challenge" value="c2\.},
qr{That was not right\. Please try this new one\.</p>},
$::LAST_TRY,
qr{(?s)<p class="message" role="alert">Careful: one more wrong answer and this site blocks your connection for a while\.</p>.*name="challenge" value="c2\.},
]



=== TEST 6: with captchaify_max_failures 2 the first wrong answer is already the last but one; in German too
--- http_config
captchaify_max_failures 2;
--- config
location /p/ { captchaify_action fight; captchaify_third_parties off; }
--- request eval
[::wrong_answers(1)]
--- more_headers eval
"$::FORM\nAccept-Language: de"
--- error_code: 403
--- response_body_like eval
qr{<p class="message" role="alert">Das war leider nicht richtig\. Bitte lösen Sie diese neue Aufgabe sorgfältig: Nach einer weiteren falschen Antwort sperrt diese Website Ihre Verbindung für eine Weile\.</p>}



=== TEST 7: a picture captcha warns before the last try as well
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type emoji; captchaify_third_parties off; }
--- request eval
[map { "POST /.captchaify/verify\nchallenge=" . Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, hardness => "e2", answer => "2,7,11", return => "/p/") . "&tile=1&lang=en" } 1 .. 2]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403]
--- response_body_like eval
[qr{(?s)\A(?!.*one more wrong answer).*That was not right}, qr{(?s)$::LAST_TRY.*name="tile"}]



=== TEST 8: a template of one's own without a message placeholder keeps working at the last try
--- config
captchaify_template_dir html/tpl;
location /p/ { captchaify_action fight; captchaify_third_parties off; }
--- user_files
>>> tpl/captcha.html
<form action="{{form_action}}" method="post"><img src="{{image_src}}"><input name="challenge" value="{{challenge}}"></form>
--- request eval
[::wrong_answers(2)]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403]
--- response_body_like eval
[qr{\A<form action="/\.captchaify/verify" method="post"><img src="data:image/png;base64,[^"]+"><input name="challenge" value="c2\.[^"]+"></form>\n?\z},
 qr{\A<form action="/\.captchaify/verify" method="post"><img src="data:image/png;base64,[^"]+"><input name="challenge" value="c2\.[^"]+"></form>\n?\z}]



=== TEST 9: many visitors behind one address without realip: one warning, naming the address and the fix
--- config
captchaify_third_parties off;
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/a.txt
content
--- pipelined_requests eval
[("GET /p/a.txt") x 40]
--- more_headers eval
::forty_headers(sub { "203.0.113.$_[0]" })
--- error_code eval
[(200) x 40]
--- grep_error_log eval
qr/captchaify: \S+ sent requests with \d+ or more different X-Forwarded-For headers/
--- grep_error_log_out eval
qr/\Acaptchaify: 127\.0\.0\.1 sent requests with 32 or more different X-Forwarded-For headers\n\z/
--- error_log
"set_real_ip_from 127.0.0.1;" and "real_ip_header X-Forwarded-For;"



=== TEST 10: with realip, the same requests are forty clients, and nothing is warned
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/a.txt
content
--- pipelined_requests eval
[("GET /p/a.txt") x 40]
--- more_headers eval
::forty_headers(sub { "203.0.113.$_[0]" })
--- error_code eval
[(200) x 40]
--- no_error_log
different X-Forwarded-For headers



=== TEST 11: a client sending the same header again and again is not a proxy
--- config
captchaify_third_parties off;
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/a.txt
content
--- pipelined_requests eval
[("GET /p/a.txt") x 40]
--- more_headers eval
::forty_headers(sub { "203.0.113.7" })
--- error_code eval
[(200) x 40]
--- no_error_log
different X-Forwarded-For headers
