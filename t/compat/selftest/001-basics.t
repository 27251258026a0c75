# Self-test of the Test::Nginx compat fallback against a plain nginx
# (no third-party modules).  Runs unchanged under the real Test::Nginx.
use Test::Nginx::Socket;

repeat_each(2);

# error_code + response_body per block, plus the extra per-block checks
# counted by hand below.
plan tests => repeat_each() * (blocks() * 2 + 4 + 3 + 2 + 1);

$ENV{TEST_NGINX_GREETING} = 'hello from env';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: return with a $TEST_NGINX_ variable and add_header
--- config
    location = /t {
        add_header X-Foo bar;
        add_header X-Empty "";
        return 200 "$TEST_NGINX_GREETING\n";
    }
--- request
    GET /t
--- response_headers
X-Foo: bar
Content-Type: text/plain
!X-Nope
Content-Length: 15
--- response_body
hello from env



=== TEST 2: static file from user_files, HEAD request gets no body
--- config
    location = /x {
        return 404;
    }
--- user_files
>>> a/hello.txt
hello, world
--- request
HEAD /a/hello.txt
--- response_headers_like
Content-Length: 13
Last-Modified: .+ GMT
ETag: ".+"
--- response_body chomp



=== TEST 3: POST body reaches the upstream, Content-Length added
--- config
    location = /echo {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back;
        proxy_set_header X-Body $request_body;
    }
    location = /back {
        return 200 "got [$http_x_body] len=$http_content_length $request_method\n";
    }
--- request
POST /echo
  hello=world&a=b
--- response_body
got [hello=world&a=b] len=15 POST
--- error_code: 200
--- no_error_log
[error]
[warn]



=== TEST 4: HTTP/1.0 request, more_headers, error_code
--- config
    location = /v {
        return 201 "$server_protocol $http_x_test $http_host\n";
    }
--- request
GET /v HTTP/1.0
--- more_headers
X-Test: abc
--- error_code: 201
--- response_body
HTTP/1.0 abc localhost



=== TEST 5: error_page and error_log
--- config
    error_page 404 /custom404;
    location = /custom404 {
        return 200 "custom not found\n";
    }
--- request
GET /does-not-exist
--- error_code: 404
--- response_body_like: ^custom not found$
--- error_log
No such file or directory
--- log_level: error
