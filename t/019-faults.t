# The smaller findings of the faults review (issue 15): no-store on every answer of the
# module's own paths, return paths of valid URI characters only, the protected location's
# budgets carried by its challenges, failure counts by captchaify_ipv6_prefix and by network,
# the Secure cookie behind a TLS-terminating proxy, and what merge_slashes off does.
# The faults that need real processes and time (kill -9, aborts, module upgrades, full
# tables) are in t/e2e/faults.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block) unless defined $block->must_die;
});

our $LOCAL = "127.0.0.1";
our $FORM = "Content-Type: application/x-www-form-urlencoded\nUser-Agent: $FIREFOX";
our $BOTH = "HXMRU4CE3R|40917352861";
sub form { my ($token, $text) = @_; "POST /.captchaify/verify\nchallenge=$token&answer=$text" }
# A challenge for a client seen through realip (X-Forwarded-For from 127.0.0.1).
# The address a challenge binds: IPv4 as is, IPv6 by its /64 as the module writes it.
sub binding { my $a = shift; $a =~ /^(\w+:\w+:\w+:\w+):/ ? "$1::/64" : $a }
sub token_for { my ($address, %a) = @_; Captchaify::challenge_token(address => binding($address), ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt", %a) }
sub as_client { my $address = shift; "X-Forwarded-For: $address\nContent-Type: application/x-www-form-urlencoded\nUser-Agent: $::FIREFOX" }

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: every answer of the module's own paths is not to be stored: 405, 403, 404, 410
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
my $t = Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 3, answer => $::BOTH);
["POST /.captchaify/audio?challenge=$t&lang=en\nx",
 "POST /.captchaify/language?return=/\nx",
 "GET /.captchaify/audio?challenge=" . Captchaify::flip_byte($t, 20) . "&lang=en",
 "GET /.captchaify/audio?challenge=$t&lang=xx",
 "GET /.captchaify/audio?challenge=" . Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 3, answer => $::BOTH, expires => time - 1) . "&lang=en"]
--- more_headers eval
$::FORM
--- error_code eval
[405, 405, 403, 404, 410]
--- response_headers eval
["Cache-Control: no-store\nAllow: GET, HEAD\nX-Content-Type-Options: nosniff",
 "Cache-Control: no-store\nAllow: GET, HEAD",
 "Cache-Control: no-store\nContent-Security-Policy: default-src 'none'",
 "Cache-Control: no-store",
 "Cache-Control: no-store"]
--- response_body eval
["405 Method Not Allowed\n", "405 Method Not Allowed\n", "403 Forbidden\n", "404 Not Found\n", "410 Gone\n"]



=== TEST 2: an answered challenge's clip is gone (410, not stored)
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
my $t = Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 3, answer => $::BOTH);
["POST /.captchaify/verify\nchallenge=$t&answer=HXMRU4CE3R&digits=1",
 "GET /.captchaify/audio?challenge=$t&lang=en"]
--- more_headers eval
$::FORM
--- error_code eval
[403, 410]
--- response_headers eval
["Cache-Control: no-store", "Cache-Control: no-store"]



=== TEST 3: a 413 from the verify path is ours, not stored, and closes the connection
--- config
location /p/ { captchaify_action fight; }
--- request eval
"POST /.captchaify/verify\n" . ("challenge=x&" x 2000)
--- more_headers eval
$::FORM
--- error_code: 413
--- response_headers
Cache-Control: no-store
Connection: close
--- response_body
413 Content Too Large



=== TEST 4: characters that may not stand for themselves in a URI are escaped in the return path
--- config
location /p/ { captchaify_action fight; }
--- request eval
["GET /p/a.txt?q=\"><script>", "GET /p/{a}|b^c`d", "GET /p/a.txt?x=%zz&y=100%"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 403]
--- response_body_like eval
[map { my $r = Captchaify::b64($_); qr{name="challenge" value="c2\.[^"]+\.\Q$r\E\.[A-Za-z0-9_-]{43}"} }
 "/p/a.txt?q=%22%3E%3Cscript%3E", "/p/%7Ba%7D%7Cb%5Ec%60d", "/p/a.txt?x=%25zz&y=100%25"]



=== TEST 5: a signed challenge whose return path holds a quote or an angle bracket is refused
(an older module may have signed one: it is not a challenge of ours any more)
--- config
location /p/ { captchaify_action fight; }
--- pipelined_requests eval
[::form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/\"><b>"), "HXMRU4"),
 ::form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/%22%3E"), "HXMRU4")]
--- more_headers eval
$::FORM
--- error_code eval
[403, 303]
--- response_body_like eval
[qr/expired or was already used/, qr/See Other/]
--- response_headers eval
["", "Location: /p/%22%3E"]



=== TEST 6: a challenge page carries its location's budget: prefix, rate limit and audio limit
--- config
captchaify_audio_rate_limit off;
captchaify_rate_limit 30r/s;
location /p/ { captchaify_action fight; captchaify_hardness 3; captchaify_ipv6_prefix 56; captchaify_audio_rate_limit 2r/m; }
location /q/ { captchaify_action fight; }
--- request eval
["GET /p/a.txt", "GET /q/a.txt"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403]
--- response_body_like eval
[qr{name="challenge" value="c2\.\d+\.3\.3600\.c\.56\.30s\.2m\.[A-Za-z0-9_-]{22}\.},
 qr{name="challenge" value="c2\.\d+\.2\.3600\.c\.64\.30s\.off\.[A-Za-z0-9_-]{22}\.}]



=== TEST 7: answers count against the client's budget at the location whose captcha they answer
(a rate of 2 per minute in the challenge: two answers, then 429, wherever the verify path falls)
--- config
captchaify_rate_limit off;
location /p/ { captchaify_action fight; }
--- pipelined_requests eval
[map { ::form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", rate => "2m", location => "L" x 16), "WRONG") } 1 .. 3]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 429]
--- response_body_like eval
[qr/That was not right/, qr/That was not right/, qr/Too many requests/]
--- response_headers eval
["", "", "Retry-After: 30\nCache-Control: no-store"]



=== TEST 8: failure counts follow captchaify_ipv6_prefix: a /56 is one client there
--- http_config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
--- config
location /p/ { captchaify_action fight; captchaify_ipv6_prefix 56; }
--- pipelined_requests eval
[(map { ::form(::token_for("2001:db8:0:100::1", prefix => 56), "WRONG") } 1 .. 3),
 "GET /p/a.txt", "GET /p/a.txt", "GET /p/a.txt"]
--- more_headers eval
[(::as_client("2001:db8:0:100::1")) x 3, ::as_client("2001:db8:0:1ff::7"), ::as_client("2001:db8:0:200::1"), ::as_client("2001:db8:0:100::1")]
--- error_code eval
[403, 403, 403, 403, 403, 403]
--- response_body_like eval
[qr/That was not right/, qr/That was not right/, qr/Too many wrong answers/,
 qr/Too many wrong answers/, qr/name="challenge"/, qr/Too many wrong answers/]



=== TEST 9: a network (an IPv6 /48) has a budget of its own: network=N
--- http_config
captchaify_max_failures 3 2h network=4;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
--- config
location /p/ { captchaify_action fight; }
--- pipelined_requests eval
[(map { ::form(::token_for("2001:db8:7:$_\::1"), "WRONG") } 1 .. 4),
 "GET /p/a.txt", "GET /p/a.txt", "GET /p/a.txt"]
--- more_headers eval
[(map { ::as_client("2001:db8:7:$_\::1") } 1 .. 4), ::as_client("2001:db8:7:ff::1"), ::as_client("2001:db8:8:1::1"), ::as_client("192.0.2.7")]
--- error_code eval
[403, 403, 403, 403, 403, 403, 403]
--- response_body_like eval
[qr/That was not right/, qr/That was not right/, qr/That was not right/, qr/Too many wrong answers/,
 qr/Too many wrong answers/, qr/name="challenge"/, qr/name="challenge"/]



=== TEST 10: network=off lifts the network budget
--- http_config
captchaify_max_failures 3 2h network=off;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
--- config
location /p/ { captchaify_action fight; }
--- pipelined_requests eval
[(map { ::form(::token_for("2001:db8:7:$_\::1"), "WRONG") } 1 .. 8), "GET /p/a.txt"]
--- more_headers eval
[(map { ::as_client("2001:db8:7:$_\::1") } 1 .. 8), ::as_client("2001:db8:7:ff::1")]
--- error_code eval
[(403) x 9]
--- response_body_like eval
[(qr/That was not right/) x 8, qr/name="challenge"/]



=== TEST 11: bad captchaify_max_failures parameters fail nginx -t with file and line
--- http_config
captchaify_max_failures 3 2h network=lots;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_max_failures" directive: invalid number "lots", expected 1 to 1000000 in \S+nginx\.conf:\d+/



=== TEST 12: an unknown captchaify_max_failures parameter fails nginx -t
--- http_config
captchaify_max_failures 3 2h 4h;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_max_failures" directive: invalid parameter "4h", expected network=N or network=off in \S+nginx\.conf:\d+/



=== TEST 13: captchaify_secure_cookies on: the pass cookie is Secure over plain HTTP too
(behind a proxy that terminates TLS)
--- config
captchaify_secure_cookies on;
location /p/ { captchaify_action fight; }
--- request eval
::form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt"), "HXMRU4")
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers_like
Set-Cookie: ^captchaify=v1\.[^;]+; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure$



=== TEST 14: by default (auto) the pass cookie is Secure only over TLS: not here
--- config
location /p/ { captchaify_action fight; }
--- request eval
::form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt"), "HXMRU4")
--- more_headers eval
$::FORM
--- error_code: 303
--- response_headers_like
Set-Cookie: ^captchaify=v1\.[^;]+; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax$



=== TEST 15: captchaify_secure_cookies with a variable: the scheme the proxy says
--- http_config
map $http_x_forwarded_proto $captchaify_tls { https on; default off; }
--- config
captchaify_secure_cookies $captchaify_tls;
location /p/ { captchaify_action fight; }
--- pipelined_requests eval
[::form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt"), "HXMRU4"),
 ::form(Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt"), "HXMRU4"),
 "GET /.captchaify/language?return=/p/a.txt&set=de"]
--- more_headers eval
["X-Forwarded-Proto: https\n$::FORM", "X-Forwarded-Proto: http\n$::FORM", "X-Forwarded-Proto: https\n$::FORM"]
--- error_code eval
[303, 303, 303]
--- response_headers_like eval
["Set-Cookie: captchaify=.*; Secure", "Set-Cookie: captchaify=.*; SameSite=Lax", "Set-Cookie: captchaify_lang=de;.*; Secure"]



=== TEST 16: a bad captchaify_secure_cookies value fails nginx -t with file and line
--- config
captchaify_secure_cookies maybe;
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_secure_cookies" directive: invalid value "maybe", expected auto, on, off or a value with variables in \S+nginx\.conf:\d+/



=== TEST 17: merge_slashes on (nginx's default): //p/ is still /p/, and protected
--- config
location /p/ { captchaify_action block; }
--- request
GET //p/a.txt
--- more_headers
User-Agent: curl/8.0
--- error_code: 403



=== TEST 18: merge_slashes off: //p/ is not /p/, so it skips the prefix location (README)
(and the file system still finds html//p/a.txt: the protected content is served)
--- config
merge_slashes off;
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
content
--- request
GET //p/a.txt
--- more_headers
User-Agent: curl/8.0
--- error_code: 200
--- response_body
content
