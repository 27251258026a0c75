# eval filter, arrays of requests, pipelined requests, chunked responses.
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: request eval array with array expectations
--- config
    location /r {
        return 200 "uri=$uri\n";
    }
--- request eval
["GET /r/a", "GET /r/b"]
--- response_body eval
["uri=/r/a\n", "uri=/r/b\n"]
--- error_code eval
[200, 200]



=== TEST 2: pipelined requests over one connection
--- config
    location /p {
        return 200 "p=$uri\n";
    }
--- pipelined_requests eval
["GET /p/1", "GET /p/2", "GET /p/3"]
--- response_body eval
["p=/p/1\n", "p=/p/2\n", "p=/p/3\n"]



=== TEST 3: chunked response (SSI output has no Content-Length)
--- config
    location = /hello.html {
        root html;
        ssi on;
    }
--- user_files
>>> hello.html
hello <!--# echo var="uri" -->
--- request
GET /hello.html
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
hello /hello.html



=== TEST 4: raw_request and a body given with eval
--- config
    location = /raw {
        return 200 "raw $request_method $args";
    }
--- raw_request eval
"GET /raw?x=1 HTTP/1.1\r
Host: localhost\r
Connection: close\r
\r
"
--- response_body chomp
raw GET x=1



=== TEST 5: packets with delay_before
--- config
    location = /echo {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back;
        proxy_set_header X-Body $request_body;
    }
    location = /back {
        return 200 "[$http_x_body]\n";
    }
--- request eval
[["POST /echo\nhel", {value => "lo", delay_before => 0.1}]]
--- response_body
[hello]



=== TEST 6: grep_error_log
--- config
    location /t {
        return 200 "ok\n";
    }
--- request
GET /missing-1
--- error_code: 404
--- response_body_like: 404 Not Found
--- grep_error_log eval
qr{"/[^"]*/html/missing-\d+" failed}
--- grep_error_log_out eval
qr{\A"\S+/html/missing-1" failed\n\z}



=== TEST 7: several requests: the error.log checks run after each request
--- config
    location /t {
        return 200 "ok\n";
    }
--- request eval
["GET /missing-2", "GET /missing-3"]
--- error_code eval
[404, 404]
--- response_body_like eval
["404 Not Found", "404 Not Found"]
--- error_log eval
[qr{open\(\) "\S+/missing-\d" failed}]
--- no_error_log
[alert]
