# The human loop: challenges, answers, passes — with tokens minted here in Perl from the
# documented format (t/lib/Captchaify.pm), so the module is checked against an independent
# implementation of it.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block);
});

our $LOCAL = "127.0.0.1";
our $FORM = "Content-Type: application/x-www-form-urlencoded\nUser-Agent: $FIREFOX";
our $CHALLENGE_PAGE = qr{(?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*<img class="captcha" src="data:image/png;base64,[A-Za-z0-9+/=]+".*name="challenge" value="c2\.\d+\.2\.3600\.c\.64\.120m\.6m\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}".*</html>\n\z};
our $BLOCK_PAGE = qr{(?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z};
sub answer_form { my ($token, $answer) = @_; "POST /.captchaify/verify\nchallenge=$token&answer=$answer" }

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a challenge page holds an image, a signed challenge and a form that posts to us
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_headers
Cache-Control: no-store
--- response_body_like eval
qr{(?s)\A<!DOCTYPE html>.*<form method="post" action="/\.captchaify/verify">.*<img class="captcha" src="data:image/png;base64,.*name="challenge" value="c2\..*<label for="captchaify-answer".*</html>\n\z}



=== TEST 2: the right answer earns a 303 to the return path and a pass cookie
--- config
location /p/ { captchaify_action fight; }
--- request eval
::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt?x=1"), "hxmr+u4")
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers_like
Location: ^/p/a\.txt\?x=1$
Set-Cookie: ^captchaify=v1\.\d{10}\.2\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax$
Cache-Control: no-store
--- error_log
captchaify: captcha solved



=== TEST 3: a pass minted by an independent implementation opens the location
--- config
location /p/ { captchaify_action fight; }
--- user_files
>>> p/a.txt
protected
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX\nCookie: other=1; captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX) . "; last=2"
--- error_code: 200
--- response_body
protected



=== TEST 4: a wrong answer shows a fresh captcha with a message and counts a failure
--- config
location /p/ { captchaify_action fight; }
--- request eval
::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/"), "HXMRU3")
--- more_headers eval
$::FORM
--- error_code: 403
--- response_body_like eval
qr{(?s)<p class="message" role="alert">That was not right\. Please try this new one\.</p>.*name="challenge" value="c2\.}
--- error_log
captchaify: wrong answer



=== TEST 5: the third wrong answer turns into the block page, and so does the fourth attempt
--- config
location /p/ { captchaify_action fight; }
--- request eval
[map { ::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/"), $_) } "WRONG1", "WRONG2", "WRONG3", "HXMRU4"]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 403, 403]
--- response_body_like eval
[qr/That was not right/, qr/That was not right/, qr/Too many wrong answers/, qr/Too many wrong answers/]



=== TEST 6: after too many failures, protected pages are blocked too (but not let ones)
--- http_config
captchaify_max_failures 1 1h;
--- config
location /p/ { captchaify_action captcha; }
location /open/ { captchaify_action let; }
--- user_files
>>> p/a.txt
protected
>>> open/a.txt
open
--- request eval
[::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4"), "NOPE"), "GET /p/a.txt", "GET /open/a.txt"]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 200]
--- response_body_like eval
[$::BLOCK_PAGE, qr/Too many wrong answers/, qr/^open$/]



=== TEST 7: a replayed challenge is rejected, even with the right answer
--- config
location /p/ { captchaify_action fight; }
--- request eval
my $t = Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/");
[::answer_form($t, "HXMRU4"), ::answer_form($t, "HXMRU4")]
--- more_headers eval
$::FORM
--- error_code eval
[303, 403]
--- response_body_like eval
[qr/Continue/, qr/expired or was already used/]



=== TEST 8: an expired challenge is rejected, and does not count as a failure
--- http_config
captchaify_max_failures 1;
--- config
location /p/ { captchaify_action fight; }
--- request eval
[::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", expires => time - 1), "HXMRU4"),
 ::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", expires => time - 1), "WRONG")]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403]
--- response_body_like eval
[qr/expired or was already used/, qr/expired or was already used/]
--- no_error_log
wrong answer



=== TEST 9: one flipped byte anywhere in a challenge token makes it worthless
--- config
location /p/ { captchaify_action fight; }
--- request eval
my $t = Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/");
[map { ::answer_form(Captchaify::flip_byte($t, $_), "HXMRU4") } 0, 3, 14, 20, 40, 60, 80, length($t) - 1]
--- more_headers eval
$::FORM
--- error_code eval
[(403) x 8]
--- response_body_like eval
[(qr/expired or was already used/) x 8]



=== TEST 10: one flipped byte anywhere in a pass makes it worthless
--- config
location /p/ { captchaify_action fight; }
--- user_files
>>> p/a.txt
protected
--- request eval
[("GET /p/a.txt") x 7]
--- more_headers eval
my $t = Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX);
[map { "User-Agent: $::FIREFOX\nCookie: captchaify=" . Captchaify::flip_byte($t, $_) } 0, 3, 14, 20, 40, 60, length($t) - 1]
--- error_code eval
[(403) x 7]
--- response_body_like eval
[($::CHALLENGE_PAGE) x 7]



=== TEST 11: garbage and oversized passes count as none
--- config
location /p/ { captchaify_action fight; }
--- request eval
[("GET /p/a.txt") x 4]
--- more_headers eval
["User-Agent: $::FIREFOX\nCookie: captchaify=", "User-Agent: $::FIREFOX\nCookie: captchaify=" . ("A" x 5000),
 "User-Agent: $::FIREFOX\nCookie: captchaify=v1....\x01.", "User-Agent: $::FIREFOX\nCookie: captchaify=v1.99999999999999999999.2.AAAA.AAAA.AAAA"]
--- error_code eval
[403, 403, 403, 403]



=== TEST 12: a pass is bound to the address (realip) and to the user agent
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /p/ { captchaify_action fight; }
--- user_files
>>> p/a.txt
protected
--- request eval
[("GET /p/a.txt") x 4]
--- more_headers eval
my $t = Captchaify::pass_token(address => "203.0.113.7", ua => $::FIREFOX);
["X-Forwarded-For: 203.0.113.7\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 203.0.113.8\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 203.0.113.7\nUser-Agent: $::CHROME\nCookie: captchaify=$t",
 "User-Agent: $::FIREFOX\nCookie: captchaify=$t"]
--- error_code eval
[200, 403, 403, 403]



=== TEST 13: an IPv6 pass holds across the client's /64
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /p/ { captchaify_action fight; }
--- user_files
>>> p/a.txt
protected
--- request eval
[("GET /p/a.txt") x 3]
--- more_headers eval
my $t = Captchaify::pass_token(address => "2001:db8:1:2::/64", ua => $::FIREFOX);
["X-Forwarded-For: 2001:db8:1:2::1\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 2001:db8:1:2:aaaa:bbbb:cccc:dddd\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 2001:db8:1:3::1\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t"]
--- error_code eval
[200, 200, 403]



=== TEST 14: a hardness-1 pass does not open a hardness-2 location, a hardness-3 one does
--- config
location /p/ { captchaify_action fight; captchaify_hardness 2; }
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



=== TEST 15: an expired pass, or one signed with another secret, is no pass
--- config
location /p/ { captchaify_action fight; }
--- request eval
[("GET /p/a.txt") x 2]
--- more_headers eval
["User-Agent: $::FIREFOX\nCookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX, expires => time - 1),
 "User-Agent: $::FIREFOX\nCookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX, secret => "another-secret-another-secret-another")]
--- error_code eval
[403, 403]



=== TEST 16: return-path attacks in the request never leave the site (a backslash is kept, escaped)
--- config
captchaify_action fight;
--- request eval
["GET //evil.example/x", "GET /\\evil.example", "GET /%2F%2Fevil.example", "GET /ok?a=%0D%0ALocation:x"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 403, 403]
--- response_body_like eval
[map { my $r = Captchaify::b64($_); qr{name="challenge" value="c2\.\d+\.2\.3600\.c\.[^."]+\.[^."]+\.[^."]+\.[^."]+\.[^."]+\.[^."]+\.[^."]+\.\Q$r\E\.} }
 "/", "/%5Cevil.example", "/%2F%2Fevil.example", "/ok?a=%0D%0ALocation:x"]



=== TEST 17: a signed challenge whose return path is not same-site is refused
--- config
location /p/ { captchaify_action fight; }
--- request eval
[map { ::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => $_), "HXMRU4") }
 "//evil.example", "https://evil.example", "/\\evil.example", "/a\r\nSet-Cookie: x=1", "evil.example"]
--- more_headers eval
$::FORM
--- error_code eval
[(403) x 5]
--- response_body_like eval
[(qr/expired or was already used/) x 5]



=== TEST 18: percent-encoded return paths stay relative paths on this site
--- config
location /p/ { captchaify_action fight; }
--- request eval
::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/%2F%2Fevil.example?q=%0D%0A"), "HXMRU4")
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers
Location: /%2F%2Fevil.example?q=%0D%0A



=== TEST 19: cookie-less mode: the pass travels as a URL argument on the return path
--- config
location /p/ { captchaify_action fight; captchaify_without_cookies on; }
--- request eval
::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt?x=1", delivery => "u"), "HXMRU4")
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers_like
Location: ^/p/a\.txt\?x=1&captchaify=v1\.\d+\.2\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$



=== TEST 20: cookie-less mode sets no cookie
--- config
location /p/ { captchaify_action fight; captchaify_without_cookies on; }
--- request eval
::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/", delivery => "u"), "HXMRU4")
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers
!Set-Cookie



=== TEST 21: cookie-less mode accepts the pass from the URL, and without it challenges
--- config
location /p/ { captchaify_action fight; captchaify_without_cookies on; }
--- user_files
>>> p/a.txt
protected
--- request eval
["GET /p/a.txt?x=1&captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX), "GET /p/a.txt"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[200, 403]



=== TEST 22: a URL pass is not accepted where cookies are the rule
--- config
location /p/ { captchaify_action fight; }
--- request eval
"GET /p/a.txt?captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX)
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403



=== TEST 23: the challenge carries the location's hardness and pass lifetime
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; captchaify_verification_age 10m; }
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_like: name="challenge" value="c2\.\d+\.3\.600\.c\.



=== TEST 24: the verify path takes only POST, and only small forms
--- config
location /p/ { captchaify_action fight; }
--- request eval
["GET /.captchaify/verify", "POST /.captchaify/verify\n" . ("a" x 10000), "POST /.captchaify/verify\nnothing=here"]
--- more_headers eval
$::FORM
--- error_code eval
[405, 413, 403]
--- response_headers eval
["Cache-Control: no-store\nAllow: POST", "Cache-Control: no-store\nConnection: close", "Cache-Control: no-store"]
--- response_body_like eval
[qr/405 Method Not Allowed/, qr/413 Content Too Large/, qr/expired or was already used/]



=== TEST 25: a solved captcha returns a POSTed page with GET (303), and the POST is not replayed
--- config
location /p/ { captchaify_action fight; }
--- request eval
::answer_form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/form"), "HXMRU4")
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers
Location: /p/form
