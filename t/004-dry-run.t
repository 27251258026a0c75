# Dry run decides, logs and exposes, but never refuses; the variables tell what happened.
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

=== TEST 1: dry run on a block location lets a crawler through and logs it
--- config
location /p/ {
    captchaify_action block;
    captchaify_dry_run on;
    add_header X-Status $captchaify_status;
}
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 200
--- response_headers
X-Status: BLOCK_DRY_RUN
--- response_body
hello
--- error_log
captchaify: dry run, would block (crawler user agent) the client (action "block")



=== TEST 2: dry run on a fight location lets a person through and logs the challenge
--- config
captchaify_dry_run on;
location /p/ { captchaify_action fight; add_header X-Status $captchaify_status; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_headers
X-Status: CHALLENGE_DRY_RUN
--- error_log
captchaify: dry run, would challenge the client (action "fight")



=== TEST 3: dry run can be switched off again in a location
--- config
captchaify_dry_run on;
location /p/ { captchaify_action block; captchaify_dry_run off; add_header X-Status $captchaify_status always; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_headers
X-Status: BLOCK
--- no_error_log
dry run



=== TEST 4: a pass is PASS, and the action variable names the location's action
--- config
location /p/ {
    captchaify_action captcha;
    add_header X-Status $captchaify_status;
    add_header X-Action $captchaify_action;
}
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_headers
X-Status: PASS
X-Action: captcha
--- no_error_log
captchaify: challenge
captchaify: block



=== TEST 5: the variables can be logged (the access log line is written after the response)
--- http_config
log_format cfy "cfy-status=$captchaify_status cfy-action=$captchaify_action";
--- config
location /p/ { captchaify_action fight; access_log logs/cfy.log cfy; }
location /log { captchaify_action let; alias logs/cfy.log; default_type text/plain; }
--- request eval
["GET /p/a.txt", "GET /log"]
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code eval
[403, 200]
--- response_body_like eval
[qr{(?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z}, "^cfy-status=CHALLENGE cfy-action=fight\$"]
