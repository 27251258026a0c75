# With a master and two workers: every worker enforces, the zone is shared and reported.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::clean_log($block);
});

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: both workers decide the same way, request after request
--- config
location /p/ { captchaify_action block; }
location /q/ { captchaify_action captcha; }
--- user_files
>>> p/a.txt
hello
>>> q/a.txt
hi
--- request eval
[("GET /p/a.txt") x 12, ("GET /q/a.txt") x 12]
--- more_headers
User-Agent: curl/8.5.0
--- error_code eval
[(403) x 24]



=== TEST 2: people pass on every worker
--- config
location /p/ { captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- request eval
[("GET /p/a.txt") x 12]
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code eval
[(200) x 12]
--- response_body eval
[("hello\n") x 12]



=== TEST 3: a declared zone is created with its size
--- http_config
captchaify_zone zone=shield:1m;
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/
--- error_code: 403
--- error_log
captchaify: zone "shield" of 1048576 bytes initialised



=== TEST 4: without captchaify_zone, the default zone is created
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/
--- error_code: 403
--- error_log
captchaify: zone "captchaify" of 10485760 bytes initialised



=== TEST 5: an unused module creates no zone
--- config
location /p/ { }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- error_code: 200
--- no_error_log
captchaify
