# Each action against a client that looks like a person and one that looks like a bot.
# Test::Nginx sends no User-Agent unless told to, and a missing one counts as a crawler.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::clean_log($block);
});

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: let passes a person
--- config
location /p/ { captchaify_action let; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_body
hello



=== TEST 2: let passes a crawler
--- config
location /p/ { captchaify_action let; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)
--- error_code: 200
--- response_body
hello



=== TEST 3: block passes a person
--- config
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_body
hello



=== TEST 4: block answers a crawler with the block page, 403 and no-store
--- config
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_headers
Cache-Control: no-store
Content-Type: text/html; charset=utf-8
X-Content-Type-Options: nosniff
--- response_headers_like
Content-Security-Policy: default-src 'none'; style-src 'nonce-[A-Za-z0-9+/]{22}'; .*frame-ancestors 'none'
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z
--- error_log
captchaify: block (crawler user agent) (action "block")



=== TEST 5: fight challenges a person
--- config
location /p/ { captchaify_action fight; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 403
--- response_headers
Cache-Control: no-store
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z



=== TEST 6: fight challenges a crawler
--- config
location /p/ { captchaify_action fight; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: python-requests/2.31.0
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z



=== TEST 7: captcha passes a person
--- config
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
--- error_code: 200
--- response_body
hello



=== TEST 8: captcha challenges a crawler
--- config
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z
--- error_log
captchaify: challenge (action "captcha")



=== TEST 9: captcha challenges a client without User-Agent
--- config
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z



=== TEST 10: other settings alone do not switch the module on, and nginx -t says so with the file and line
--- config
location /p/ { captchaify_hardness 3; add_header X-Action "[$captchaify_action]" always; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 200
--- response_headers
X-Action: []
--- response_body
hello
--- error_log eval
qr{\[warn\] .*captchaify: "captchaify_hardness" in \S+/nginx\.conf:\d+ reaches no location where captchaify_action is set}



=== TEST 10b: captchaify_action inherited from the server: the server's other settings apply in each location, and nothing warns
--- config
captchaify_action captcha;
captchaify_hardness 3;
location /p/ { add_header X-Action $captchaify_action always; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_headers
X-Action: captcha
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z
--- no_error_log
reaches no location



=== TEST 10c: switches turned off at http level (captchaify_crowdsec off, captchaify_third_parties off) put nothing on any location, and warn
--- http_config
captchaify_crowdsec off;
captchaify_third_parties off;
--- config
location /p/ { add_header X-Status "[$captchaify_status]" always; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 200
--- response_headers
X-Status: []
--- response_body
hello
--- error_log eval
[qr{captchaify: "captchaify_crowdsec" in \S+/nginx\.conf:\d+ reaches no location},
 qr{captchaify: "captchaify_third_parties" in \S+/nginx\.conf:\d+ reaches no location}]



=== TEST 11: block_crawler off: crawlers are not suspicious
--- config
location /p/ { captchaify_action block; captchaify_block_crawler off; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 200
--- response_body
hello



=== TEST 12: server-level settings are inherited and a location overrides them
--- config
captchaify_action block;
location /p/ { }
location /q/ { captchaify_action let; }
--- user_files
>>> p/a.txt
hello
>>> q/a.txt
open
--- request eval
["GET /p/a.txt", "GET /q/a.txt"]
--- more_headers
User-Agent: curl/8.5.0
--- error_code eval
[403, 200]
--- response_body_like eval
[qr{(?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z}, "^open\$"]



=== TEST 13: the module loaded but unused changes nothing
--- config
location /p/ { add_header X-Status "[$captchaify_status]"; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- error_code: 200
--- response_headers
X-Status: []
--- response_body
hello
--- no_error_log
captchaify



=== TEST 14: the page escapes markup from the requested path and query
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/<script>alert(1)</script>?q="><img/src=x/onerror=alert(2)>
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 403
--- response_body_like: <code>/p/&lt;script&gt;alert\(1\)&lt;/script&gt;\?q=&quot;&gt;&lt;img/src=x/onerror=alert\(2\)&gt;</code>
