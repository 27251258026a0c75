# Rate limits: per client (IPv6 by prefix), per pass token, the rate-limit page, dry run and
# under-attack mode. Clients are told apart with realip and X-Forwarded-For from 127.0.0.1.
# Timing-dependent behaviour (recovery, cool-down, reload, 100,000 clients) is in
# t/e2e/ratelimit.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block);
});

our $RATE_PAGE = qr{(?s)\A<!DOCTYPE html>.*<h1 class="danger">Too many requests</h1>.*<strong>(\d+)</strong> s,.*</html>\n\z};

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: at 120r/m the 121st request of a burst is refused with 429 and Retry-After: 1
--- config
location /p/ { captchaify_action captcha; captchaify_rate_limit 120r/m; }
--- user_files
>>> p/a.txt
hello
--- pipelined_requests eval
[("GET /p/a.txt") x 121]
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code eval
[(200) x 120, 429]
--- response_headers eval
[("") x 120, "Retry-After: 1\nCache-Control: no-store\nContent-Type: text/html; charset=utf-8"]
--- response_body_like eval
[(qr/\Ahello\n\z/) x 120, $::RATE_PAGE]



=== TEST 2: Retry-After counts whole seconds until the next request is allowed (6r/m: 10 s)
--- config
location /p/ { captchaify_action captcha; captchaify_rate_limit 6r/m; }
--- user_files
>>> p/a.txt
hello
--- request eval
[("GET /p/a.txt") x 7]
--- more_headers eval
[("User-Agent: $::FIREFOX") x 7]
--- error_code eval
[(200) x 6, 429]
--- response_headers eval
[("") x 6, "Retry-After: 10"]
--- response_body_like eval
[(qr/hello/) x 6, qr{<strong>10</strong> s,}]



=== TEST 3: the status is configurable (the seed used 418), and HEAD gets no body
--- config
location /p/ { captchaify_action captcha; captchaify_rate_limit 1r/m; captchaify_rate_limit_status 418; }
--- user_files
>>> p/a.txt
hello
--- request eval
["GET /p/a.txt", "GET /p/a.txt", "HEAD /p/a.txt"]
--- more_headers eval
[("User-Agent: $::FIREFOX") x 3]
--- error_code eval
[200, 418, 418]
--- response_headers eval
["", "Retry-After: 60", "Retry-After: 60\nCache-Control: no-store"]
--- response_body_like eval
[qr/hello/, qr/Too many requests/, qr/\A\z/]



=== TEST 4: clients are counted apart; one client's flood does not limit another
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /p/ { captchaify_action captcha; captchaify_rate_limit 2r/m; }
--- user_files
>>> p/a.txt
hello
--- request eval
[("GET /p/a.txt") x 6]
--- more_headers eval
["X-Forwarded-For: 198.51.100.1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 198.51.100.1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 198.51.100.1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 198.51.100.2\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 198.51.100.2\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 198.51.100.2\nUser-Agent: $::CHROME"]
--- error_code eval
[200, 200, 429, 200, 200, 429]



=== TEST 5: IPv6 clients are counted by their /64: address rotation does not escape
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /p/ { captchaify_action captcha; captchaify_rate_limit 2r/m; }
--- user_files
>>> p/a.txt
hello
--- request eval
[("GET /p/a.txt") x 4]
--- more_headers eval
["X-Forwarded-For: 2001:db8:5:6::1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:5:6:ffff:ffff:ffff:ffff\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:5:6:1234::99\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:5:7::1\nUser-Agent: $::FIREFOX"]
--- error_code eval
[200, 200, 429, 200]



=== TEST 6: captchaify_ipv6_prefix widens or narrows what counts as one client
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /wide/ { captchaify_action captcha; captchaify_rate_limit 2r/m; captchaify_ipv6_prefix 48; alias html/; }
location /narrow/ { captchaify_action captcha; captchaify_rate_limit 2r/m; captchaify_ipv6_prefix 128; alias html/; }
--- user_files
>>> a.txt
hello
--- request eval
["GET /wide/a.txt", "GET /wide/a.txt", "GET /wide/a.txt",
 "GET /narrow/a.txt", "GET /narrow/a.txt", "GET /narrow/a.txt"]
--- more_headers eval
["X-Forwarded-For: 2001:db8:9:1::1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:9:2::1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:9:3::1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:a::1\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:a::2\nUser-Agent: $::FIREFOX",
 "X-Forwarded-For: 2001:db8:a::3\nUser-Agent: $::FIREFOX"]
--- error_code eval
[200, 200, 429, 200, 200, 200]



=== TEST 7: one pass shared by several clients is throttled as one client
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /p/ { captchaify_action fight; captchaify_rate_limit 3r/m; captchaify_ipv6_prefix 128; }
--- user_files
>>> p/a.txt
protected
--- request eval
[("GET /p/a.txt") x 5]
--- more_headers eval
my $t = Captchaify::pass_token(address => "2001:db8:77::/64", ua => $::FIREFOX);
["X-Forwarded-For: 2001:db8:77::1\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 2001:db8:77::2\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 2001:db8:77::3\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 2001:db8:77::4\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 2001:db8:77::5\nUser-Agent: $::FIREFOX"]
--- error_code eval
[200, 200, 200, 429, 403]



=== TEST 8: dry run counts but never refuses, and says so in the log and the variable
--- config
location /p/ {
    captchaify_action captcha;
    captchaify_rate_limit 2r/m;
    captchaify_dry_run on;
    add_header X-Status $captchaify_status always;
}
--- user_files
>>> p/a.txt
hello
--- request eval
[("GET /p/a.txt") x 4]
--- more_headers eval
[("User-Agent: $::FIREFOX") x 4]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-Status: PASS", "X-Status: PASS", "X-Status: RATE_LIMITED_DRY_RUN", "X-Status: RATE_LIMITED_DRY_RUN"]



=== TEST 9: let locations are not counted; off turns the limit off
--- config
location /let/ { captchaify_action let; captchaify_rate_limit 1r/m; alias html/; }
location /off/ { captchaify_rate_limit off; captchaify_max_rate_limit off; alias html/; }
--- user_files
>>> a.txt
hello
--- request eval
[("GET /let/a.txt") x 5, ("GET /off/a.txt") x 150]
--- more_headers eval
[("User-Agent: $::FIREFOX") x 155]
--- error_code eval
[(200) x 155]



=== TEST 10: inherited from the server, each location counts its clients on its own
--- config
captchaify_action captcha;
captchaify_rate_limit 2r/m;
location /a/ { alias html/; }
location /b/ { alias html/; }
--- user_files
>>> x.txt
x
--- request eval
["GET /a/x.txt", "GET /a/x.txt", "GET /b/x.txt", "GET /b/x.txt", "GET /a/x.txt", "GET /b/x.txt"]
--- more_headers eval
[("User-Agent: $::FIREFOX") x 6]
--- error_code eval
[200, 200, 200, 200, 429, 429]



=== TEST 11: under attack, clients without a pass get the captcha; passes keep passing
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /p/ {
    captchaify_action captcha;
    captchaify_max_rate_limit 5r/m;
    add_header X-Status $captchaify_status always;
}
--- user_files
>>> p/a.txt
content
--- request eval
[("GET /p/a.txt") x 8]
--- more_headers eval
my $t = Captchaify::pass_token(address => "192.0.2.50", ua => $::FIREFOX);
[(map { "X-Forwarded-For: 192.0.2.$_\nUser-Agent: $::FIREFOX" } 1 .. 6),
 "X-Forwarded-For: 192.0.2.50\nUser-Agent: $::FIREFOX\nCookie: captchaify=$t",
 "X-Forwarded-For: 192.0.2.7\nUser-Agent: $::FIREFOX"]
--- error_code eval
[200, 200, 200, 200, 200, 403, 200, 403]
--- response_headers eval
[("X-Status: PASS") x 5, "X-Status: CHALLENGE_UNDER_ATTACK", "X-Status: PASS_UNDER_ATTACK", "X-Status: CHALLENGE_UNDER_ATTACK"]
--- response_body_like eval
[(qr/content/) x 5, qr/Verification required/, qr/content/, qr/Verification required/]



=== TEST 12: let locations are untouched by an attack elsewhere and by their own load
--- config
location /p/ { captchaify_action captcha; captchaify_max_rate_limit 2r/m; alias html/; }
location /let/ { captchaify_action let; captchaify_max_rate_limit 2r/m; alias html/; }
--- user_files
>>> a.txt
hello
--- request eval
["GET /p/a.txt", "GET /p/a.txt", "GET /p/a.txt", "GET /let/a.txt", "GET /let/a.txt", "GET /let/a.txt"]
--- more_headers eval
[("User-Agent: $::FIREFOX") x 6]
--- error_code eval
[200, 200, 403, 200, 200, 200]



=== TEST 13: the zone reports how many clients it holds, and warns when that is few
--- http_config
captchaify_zone zone=tiny:128k;
--- config
location /p/ { captchaify_action let; }
--- request
GET /p/
--- error_code: 404
--- error_log eval
[qr/captchaify: zone "tiny" of 131072 bytes initialised: room for \d+ clients' rate buckets \(52 bytes each\)/,
 qr/captchaify: zone "tiny" is small: it holds the rate buckets of only \d+ clients/]
--- no_error_log
[alert]
