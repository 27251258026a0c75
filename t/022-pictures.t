# The picture captchas (captchaify_captcha_type emoji | animals): the page, the grid per
# hardness, and judging ticked tiles, with challenges minted here in Perl (t/lib/Captchaify.pm:
# a picture challenge writes its kind's letter before the hardness digit, "e2", "a1").
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
# A picture page: the prompt, the example, N tiles as checkboxes, the challenge and the
# language in the form, the clip linked (never inline).
sub picture_page {
    # $between: a pattern between the grid and the clip's link; $never: what the page lacks.
    my ($kind, $hardness, $tiles, $between, $never) = (@_, '', '')[0 .. 4];
    my $absent = join '', map { "(?!.*\Q$_\E)" } grep { length } split /\|/, $never;
    my $last = $tiles + 1;
    qr{(?s)\A$absent<!DOCTYPE html>.*<h1>Verification required</h1>.*<form method="post" action="/\.captchaify/verify">.*name="challenge" value="c2\.\d+\.$kind$hardness\.3600\.c\..*<input type="hidden" name="lang" value="en">.*<legend>Select every picture that shows: <strong>[^<]+</strong></legend>.*<img src="data:image/png;base64,[A-Za-z0-9+/=]+" width="64" height="64" alt="An example of what to select">(?:.*?<label class="tile"><input type="checkbox" name="tile" value="\d+"><img src="data:image/png;base64,[A-Za-z0-9+/=]+" width="64" height="64" alt="Picture \d+"></label>){$tiles}(?!.*value="$last")$between.*href="/\.captchaify/audio\?challenge=c2\.[^"]+&amp;lang=en".*</html>\n\z}
}
sub tiles_form {
    my ($token, @tiles) = @_;
    "POST /.captchaify/verify\nchallenge=$token" . join('', map { "&tile=$_" } @tiles) . "&lang=en";
}
sub token {
    my %a = @_;
    Captchaify::challenge_token(address => $LOCAL, ua => $FIREFOX, return => "/p/", %a);
}

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: an emoji page at hardness 1: a 4 x 4 grid, the prompt, the audio alternative
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type emoji; captchaify_hardness 1; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_headers
Cache-Control: no-store
--- response_headers_like
Content-Security-Policy: ^default-src 'none'; style-src 'nonce-[A-Za-z0-9_-]+'; img-src data:; media-src data: 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$
--- response_body_like eval
::picture_page("e", 1, 16, '', 'data:audio|name="answer"|required maxlength="40"')



=== TEST 2: an animal page at hardness 2: 4 x 5, the alternative in a <details>, nothing required of the clip
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_like eval
::picture_page("a", 2, 20, '.*<details class="alternative">', 'required maxlength="40"')



=== TEST 3: at hardness 3 the digits are asked as well, linked, not inline
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; captchaify_hardness 3; }
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_like eval
qr{(?s)\A(?!.*data:audio)(?!.*<details).*name="challenge" value="c2\.\d+\.a3\..*<audio controls preload="none" src="/\.captchaify/audio\?challenge=.*name="digits"[^>]* required maxlength="40"}



=== TEST 4: the right tiles, in any order, earn the pass and the way back
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type emoji; }
--- request eval
::tiles_form(::token(hardness => "e2", answer => "2,7,11,14", return => "/p/a.txt?x=1"), 14, 2, 11, 7)
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers_like
Location: ^/p/a\.txt\?x=1$
Set-Cookie: ^captchaify=v1\.\d{10}\.2\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax$
--- error_log
captchaify: captcha solved



=== TEST 5: partial, extra, wrong, none, a tile twice and tampered indices all fail, each with a fresh grid
--- http_config
captchaify_max_failures 20;
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; captchaify_hardness 1; }
--- request eval
[map { ::tiles_form(::token(hardness => "a1", answer => "3,8,16"), @$_) }
 [3, 8], [3, 8, 16, 1], [3, 8, 15], [], [3, 8, 8, 16], [3, 8, 17], [3, 8, "16x"], [3, 8, -16], [3, 8, "%31%36"]]
--- more_headers eval
$::FORM
--- error_code eval
[(403) x 8, 303]
--- response_body_like eval
[(qr{(?s)<p class="message" role="alert">That was not right\. Please try this new one\.</p>.*name="challenge" value="c2\.\d+\.a1\.}) x 8, qr/Continue/]



=== TEST 6: the text field does not answer a picture captcha, nor tiles a text one
--- http_config
captchaify_max_failures 10;
--- config
location /p/ { captchaify_action fight; }
--- request eval
["POST /.captchaify/verify\nchallenge=" . ::token(hardness => "e2", answer => "1,2,3,4") . "&answer=1,2,3,4",
 "POST /.captchaify/verify\nchallenge=" . ::token(hardness => 2, answer => "HXMRU4") . "&tile=1&answer=",
 ::tiles_form(::token(hardness => 2, answer => "1,2,3,4"), 1, 2, 3, 4)]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 403]
--- response_body_like eval
[qr/That was not right/, qr/That was not right/, qr/That was not right/]



=== TEST 7: a replay is refused, even right; an expired challenge is stale and costs no failure
--- http_config
captchaify_max_failures 1;
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type emoji; }
--- request eval
my $t = ::token(hardness => "e2", answer => "1,5,9,20");
[::tiles_form($t, 1, 5, 9, 20), ::tiles_form($t, 1, 5, 9, 20),
 ::tiles_form(::token(hardness => "e2", answer => "1,5,9,20", expires => time - 1), 1, 5, 9, 20),
 ::tiles_form(::token(hardness => "e2", answer => "1,5,9,20", expires => time - 1), 2)]
--- more_headers eval
$::FORM
--- error_code eval
[303, 403, 403, 403]
--- response_body_like eval
[qr/Continue/, qr/expired or was already used/, qr/expired or was already used/, qr/expired or was already used/]
--- no_error_log
wrong answer



=== TEST 8: an oversized form is refused before it is read as an answer
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type emoji; }
--- request eval
::tiles_form(::token(hardness => "e2", answer => "1,2,3,4"), (1) x 3000)
--- more_headers eval
$::FORM
--- error_code: 413
--- response_headers
Cache-Control: no-store



=== TEST 9: a hardness-1 pass does not open a hardness-3 picture location: it shows the grid
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; captchaify_hardness 3; }
--- user_files
>>> p/a.txt
protected
--- request eval
[("GET /p/a.txt") x 2]
--- more_headers eval
["User-Agent: $::FIREFOX\nCookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 1),
 "User-Agent: $::FIREFOX\nCookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 3)]
--- error_code eval
[403, 200]
--- response_body_like eval
[qr/name="challenge" value="c2\.\d+\.a3\./, qr/^protected$/]



=== TEST 10: a picture captcha's clip downloads at every hardness and spends the audio budget its challenge carries
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type emoji; captchaify_hardness 1; }
--- request eval
my $t = ::token(hardness => "e1", answer => "1,2,3", audio => "2m");
[("GET /.captchaify/audio?challenge=$t&lang=en") x 3]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[200, 200, 429]
--- response_body_like eval
[qr{\ARIFF....WAVEfmt }s, qr{\ARIFF....WAVEfmt }s, qr/Too many requests/]



=== TEST 11: showing picture pages spends no audio budget (nothing is spoken until it is downloaded)
--- http_config
captchaify_audio_rate_limit 1r/m;
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; captchaify_hardness 3; }
--- request eval
[("GET /p/") x 3]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 403]
--- response_body_like eval
[(qr/Select every picture/) x 3]



=== TEST 12: a German page names the motif in German
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; }
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX\nAccept-Language: de"
--- error_code: 403
--- response_body_like eval
qr{(?s)<html lang="de".*<input type="hidden" name="lang" value="de">.*<legend>[^<]*: <strong>[^<]+</strong></legend>.*alt="Bild 1"}



=== TEST 13: captchaify_captcha_type takes text, emoji or animals, and is inherited
--- http_config
captchaify_captcha_type animals;
--- config
location /p/ { captchaify_action fight; }
location /t/ { captchaify_action fight; captchaify_captcha_type text; }
--- request eval
["GET /p/", "GET /t/"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403]
--- response_body_like eval
[qr/Select every picture/, qr/<img class="captcha"/]



=== TEST 14: a bad captcha type fails nginx -t, naming the file and line
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type cats; }
--- must_die
--- error_log eval
qr{\[emerg\] .*"captchaify_captcha_type" directive: invalid captcha type "cats", expected text, emoji or animals in .*nginx\.conf:\d+}



=== TEST 15: an operator's picture folder is used (here the shipped animals, for the emoji type)
--- config eval
"location /p/ { captchaify_action fight; captchaify_captcha_type emoji; captchaify_picture_dir $ENV{PWD}/pictures/animals; }"
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_like eval
qr{<legend>Select every picture that shows: <strong>[^<]+</strong>}



=== TEST 16: a picture folder that is missing fails nginx -t
--- config
location /p/ { captchaify_action fight; captchaify_picture_dir /nonexistent/pictures; }
--- must_die
--- error_log eval
qr{\[emerg\] .*"captchaify_picture_dir" directive: picture folder "/nonexistent/pictures" is not a readable directory in .*nginx\.conf:\d+}



=== TEST 17: a picture folder with too few motifs fails nginx -t
--- user_files
>>> few/one/names.txt
en One
--- config
location /p/ { captchaify_action fight; captchaify_picture_dir html/few; }
--- must_die
--- error_log eval
qr{\[emerg\] .*"captchaify_picture_dir" directive: motif "one" has no pictures}



=== TEST 18: a picture folder where no location shows pictures warns at nginx -t that it does nothing
--- config eval
"location /p/ { captchaify_action fight; captchaify_picture_dir $ENV{PWD}/pictures/emoji; }
 location /q/ { captchaify_action fight; captchaify_captcha_type emoji; }"
--- request
GET /q/
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- error_log eval
qr{\[warn\] .*captchaify: "captchaify_picture_dir" in \S+nginx\.conf:\d+ reaches no location that acts with a picture captcha}



=== TEST 19: an operator's templates without picture.html: a warning at nginx -t, and a 404 for the picture captcha
--- user_files
>>> tpl/captcha.html
<p>{{challenge}}</p>
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; captchaify_template_dir html/tpl; }
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 404
--- error_log eval
qr{\[warn\] .*captchaify: a captchaify_template_dir in use where a picture captcha is shown has no picture\.html}
