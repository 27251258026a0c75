# Every method is covered, HEAD gets headers only, request bodies are drained.
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

=== TEST 1: HEAD on a block location gets the headers of the block page and no body
--- config
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- request
HEAD /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_headers
Cache-Control: no-store
Content-Type: text/html; charset=utf-8
--- response_body



=== TEST 2: POST to a fight location is challenged, not passed to the content
--- config
location /p/ { captchaify_action fight; proxy_pass http://127.0.0.1:$server_port/backend/; }
location /backend/ { captchaify_action let; return 200 "backend saw the post\n"; }
--- request
POST /p/form
name=value&other=1
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
Content-Type: application/x-www-form-urlencoded
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z



=== TEST 3: a person's POST through a captcha location reaches the content
--- config
location /p/ { captchaify_action captcha; proxy_pass http://127.0.0.1:$server_port/backend/; }
location /backend/ { captchaify_action let; return 200 "backend saw the post\n"; }
--- request
POST /p/form
name=value&other=1
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body
backend saw the post



=== TEST 4: the POST body of a blocked request is drained: keepalive goes on
--- config
location /p/ { captchaify_action block; }
location /q/ { captchaify_action let; }
--- user_files
>>> q/a.txt
next
--- pipelined_requests eval
["POST /p/x\n" . ("a" x 5000), "GET /q/a.txt"]
--- more_headers
User-Agent: curl/8.5.0
--- error_code eval
[403, 200]
--- response_body_like eval
[qr{(?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z}, "^next\$"]



=== TEST 5: other methods (PUT, DELETE, OPTIONS) are decided like GET
--- config
location /p/ { captchaify_action block; proxy_pass http://127.0.0.1:$server_port/backend/; }
location /backend/ { return 200 "reached\n"; }
--- request eval
["PUT /p/x\nbody", "DELETE /p/x", "OPTIONS /p/x"]
--- more_headers
User-Agent: Wget/1.21.3
--- error_code eval
[403, 403, 403]



=== TEST 6: HTTP/1.0 clients get a complete page
--- config
location /p/ { captchaify_action block; }
--- raw_request eval
"GET /p/a HTTP/1.0\r\nUser-Agent: curl/8\r\n\r\n"
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z
