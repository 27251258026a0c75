# The pre-check (captchaify_precheck): a client due a captcha first gets a tiny page that sets
# a signed proof (cookie, or URL argument in cookie-less mode) and sends it back; only a
# request that brings the proof back gets an image drawn. Proofs are minted here in Perl too.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block) unless defined $block->must_die;
});

our $LOCAL = "127.0.0.1";
our $UA = "User-Agent: $FIREFOX";
sub proof { Captchaify::precheck_token(address => $::LOCAL, ua => $::FIREFOX, path => "/p/a.txt", @_) }
our $PRECHECK_PAGE = qr{\A<!DOCTYPE html><html lang="en" dir="ltr"><head><meta charset="utf-8"><meta name="robots" content="noindex, nofollow"><meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="refresh" content="0; url=/p/a\.txt"><title>Verification required</title></head><body><p><a href="/p/a\.txt">Continue</a></p></body></html>\n\z};
our $CAPTCHA = qr{<img class="captcha" src="data:image/png;base64,};

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: on by default: no image for a first visit, a tiny page that sets a proof and comes back
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
$::UA
--- error_code: 403
--- response_headers
Cache-Control: no-store
Content-Security-Policy: default-src 'none'
X-Captchaify-Test-Answer:
--- response_headers_like
Set-Cookie: ^captchaify_pre=p1\.\d{10}\.[A-Za-z0-9_-]{43}; Path=/; Max-Age=300; HttpOnly; SameSite=Lax$
Content-Length: ^\d{3}$
--- response_body_like eval
$::PRECHECK_PAGE



=== TEST 2: the proof brought back earns the captcha page (and the image is drawn then only)
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
"$::UA\nCookie: captchaify_pre=" . ::proof()
--- error_code: 403
--- response_body_like eval
$::CAPTCHA
--- response_headers_like
X-Captchaify-Test-Answer: ^[0-9A-Z]{9,11}$



=== TEST 3: forged, expired, foreign and other-page proofs are no proof
--- http_config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
--- config
location /p/ { captchaify_action fight; }
--- request eval
[("GET /p/a.txt") x 5]
--- more_headers eval
["$::UA\nCookie: captchaify_pre=" . ::proof(secret => "not-the-secret-not-the-secret-not-the"),
 "$::UA\nCookie: captchaify_pre=" . ::proof(expires => time - 1),
 "$::UA\nX-Forwarded-For: 192.0.2.9\nCookie: captchaify_pre=" . ::proof(),
 "User-Agent: $::CHROME\nCookie: captchaify_pre=" . ::proof(),
 "$::UA\nCookie: captchaify_pre=" . ::proof(path => "/p/b.txt")]
--- error_code eval
[(403) x 5]
--- response_body_like eval
[($::PRECHECK_PAGE) x 5]



=== TEST 4: cookie-less mode: the proof travels on the URL the page sends the client back to
--- config
location /p/ { captchaify_action fight; captchaify_without_cookies on; }
--- request
GET /p/a.txt?x=1
--- more_headers eval
$::UA
--- error_code: 403
--- raw_response_headers_unlike: Set-Cookie
--- response_body_like eval
qr{<meta http-equiv="refresh" content="0; url=/p/a\.txt\?x=1&amp;captchaify_pre=p1\.\d{10}\.[A-Za-z0-9_-]{43}">.*<a href="/p/a\.txt\?x=1&amp;captchaify_pre=p1\.\d{10}\.[A-Za-z0-9_-]{43}">}s



=== TEST 5: cookie-less mode: with the proof argument, the captcha, whose return path is clean
--- config
location /p/ { captchaify_action fight; captchaify_without_cookies on; }
--- request eval
"GET /p/a.txt?x=1&captchaify_pre=" . ::proof(path => "/p/a.txt?x=1")
--- more_headers eval
$::UA
--- error_code: 403
--- response_body_like eval
my $r = Captchaify::b64("/p/a.txt?x=1");
qr{$::CAPTCHA.*name="challenge" value="c2\.[^"]+\.\Q$r\E\.[A-Za-z0-9_-]{43}"}s



=== TEST 6: off: the captcha at once
--- config
location /p/ { captchaify_action fight; captchaify_precheck off; }
--- request
GET /p/a.txt
--- more_headers eval
$::UA
--- error_code: 403
--- response_body_like eval
$::CAPTCHA
--- raw_response_headers_unlike: captchaify_pre



=== TEST 7: under_attack: the captcha at once while the location is calm, the pre-check under attack
--- config
location /p/ { captchaify_action fight; captchaify_precheck under_attack; captchaify_max_rate_limit 2r/m; }
--- request eval
[("GET /p/a.txt") x 4]
--- more_headers eval
$::UA
--- error_code eval
[(403) x 4]
--- response_body_like eval
[$::CAPTCHA, $::CAPTCHA, $::PRECHECK_PAGE, $::PRECHECK_PAGE]



=== TEST 8: HEAD gets the headers and the proof, POST the page (its refresh is a GET)
--- config
location /p/ { captchaify_action fight; }
--- request eval
["HEAD /p/a.txt", "POST /p/a.txt\nq=1"]
--- more_headers eval
["$::UA", "$::UA\nContent-Type: application/x-www-form-urlencoded"]
--- error_code eval
[403, 403]
--- response_headers_like eval
["Set-Cookie: captchaify_pre=p1\\..*", "Set-Cookie: captchaify_pre=p1\\..*"]
--- response_body_like eval
[qr/\A\z/, $::PRECHECK_PAGE]



=== TEST 9: a pass still opens the page; let and block locations never pre-check
--- config
location /p/ { captchaify_action fight; }
location /l/ { captchaify_action let; }
location /b/ { captchaify_action block; }
--- user_files
>>> p/a.txt
protected
>>> l/a.txt
open
--- request eval
["GET /p/a.txt", "GET /l/a.txt", "GET /b/a.txt"]
--- more_headers eval
["$::UA\nCookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX), $::UA, "User-Agent: curl/8.0"]
--- error_code eval
[200, 200, 403]
--- response_body_like eval
["protected", "open", "Access denied"]



=== TEST 10: the page speaks the client's language
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
"$::UA\nAccept-Language: de-DE,de;q=0.9"
--- error_code: 403
--- response_body_like: <html lang="de" dir="ltr">.*<a href="/p/a\.txt">Weiter</a>



=== TEST 11: the pre-check costs no image, and is logged as the challenge it stands for
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
$::UA
--- error_code: 403
--- error_log
captchaify: challenge (action "fight")
--- no_error_log
added to thread pool



=== TEST 12: a bad value fails nginx -t with file and line
--- config
location /p/ { captchaify_action fight; captchaify_precheck maybe; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_precheck" directive: invalid value "maybe", expected on, off or under_attack in \S+nginx\.conf:\d+/
