# Hostile and malformed requests get a clean answer and never crash a worker.
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

=== TEST 1: a 7 kB User-Agent is treated as a bot, cleanly
--- config
location /p/ { captchaify_action captcha; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: Mozilla/5.0 " . ("A" x 7000)
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z
--- no_error_log
[alert]
[crit]



=== TEST 2: a User-Agent over nginx's header buffer is refused by nginx itself
--- config
location /p/ { captchaify_action captcha; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: " . ("B" x 20000)
--- error_code: 400
--- no_error_log
[alert]
[crit]



=== TEST 3: invalid UTF-8 and control bytes in the User-Agent
--- config
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- raw_request eval
"GET /p/a.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 \xff\xfe\x01\x7f (X11) Firefox/128.0\r\nConnection: close\r\n\r\n"
--- error_code: 200
--- response_body
hello
--- no_error_log
[alert]
[crit]



=== TEST 4: two User-Agent headers
--- config
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- more_headers
User-Agent: curl/8.5.0
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- request
GET /p/a.txt
--- error_code: 403
--- no_error_log
[alert]
[crit]



=== TEST 5: an empty User-Agent counts as a bot
--- config
location /p/ { captchaify_action block; }
--- raw_request eval
"GET /p/a.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \r\nConnection: close\r\n\r\n"
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z



=== TEST 6: a long path full of markup characters is escaped and answered
--- config
location /p/ { captchaify_action fight; }
--- request eval
"GET /p/" . ("%ff<>\"'&" x 300)
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 403
--- response_body_like: (?:%ff&lt;&gt;&quot;&#39;&amp;){300}
--- no_error_log
[alert]
[crit]



=== TEST 7: a malformed request line never reaches us and does not disturb the next one
--- config
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- raw_request eval
"GET /p/a.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nContent-Length: abc\r\n\r\n"
--- error_code: 400
--- no_error_log
[alert]
[crit]
