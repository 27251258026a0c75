# Internal redirects and subrequests cannot bypass the decision: the access phase runs again
# with the new location's policy, and subrequests are checked in preaccess.
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
no_root_location();
run_tests();

__DATA__

=== TEST 1: index redirect from a let location into a fight location is challenged
--- config
location / { captchaify_action let; }
location = /index.html { captchaify_action fight; }
--- user_files
>>> index.html
protected index
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z



=== TEST 2: try_files into a named block location blocks a crawler
--- config
location /tf/ { captchaify_action let; try_files /nonexistent @protected; }
location @protected { captchaify_action block; root html/secret; try_files /s.txt =404; }
--- user_files
>>> secret/s.txt
secret content
--- request
GET /tf/x
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z



=== TEST 3: error_page into a fight location is challenged
--- config
location /ep/ { captchaify_action let; error_page 404 = /protected/missing.html; }
location /protected/ { captchaify_action fight; }
--- request
GET /ep/none
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z



=== TEST 4: after a redirect to a let location the variables tell the final decision
--- config
location / { captchaify_action captcha; add_header X-Status $captchaify_status; }
location = /index.html { captchaify_action let; add_header X-Status "$captchaify_status/$captchaify_action"; }
--- user_files
>>> index.html
welcome
--- request
GET /
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_headers
X-Status: PASS/let
--- response_body
welcome



=== TEST 5: a crawler is challenged at the first location; the redirect never happens
--- config
location / { captchaify_action captcha; }
location = /index.html { captchaify_action let; }
--- user_files
>>> index.html
welcome
--- request
GET /
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1>Verification required</h1>.*</html>\n\z



=== TEST 6: an SSI subrequest from a let page into a fight location does not get the content
--- config
location /page/ { captchaify_action let; ssi on; }
location /secret/ { captchaify_action fight; }
--- user_files
>>> page/index.html
before<!--# include virtual="/secret/s.txt" -->after
>>> secret/s.txt
SECRET
--- request
GET /page/index.html
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_body_like: ^before(?:(?!SECRET).)*403 Forbidden(?:(?!SECRET).)*after$
--- error_log
captchaify: subrequest denied



=== TEST 7: an SSI subrequest into a captcha location passes for a person
--- config
location /page/ { captchaify_action let; ssi on; }
location /secret/ { captchaify_action captcha; }
--- user_files
>>> page/index.html
before<!--# include virtual="/secret/s.txt" -->after
>>> secret/s.txt
SECRET
--- request
GET /page/index.html
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_body_like: ^before\s*SECRET\s*after$



=== TEST 8: auth_request into a block location refuses a crawler
--- config
location /private/ { captchaify_action let; auth_request /auth; }
location = /auth { captchaify_action block; empty_gif; }
--- user_files
>>> private/p.txt
private
--- request
GET /private/p.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403



=== TEST 9: auth_request into a block location lets a person through
--- config
location /private/ { captchaify_action let; auth_request /auth; }
location = /auth { captchaify_action block; empty_gif; }
--- user_files
>>> private/p.txt
private
--- request
GET /private/p.txt
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 200
--- response_body
private



=== TEST 10: satisfy any cannot turn our refusal into a pass
--- config
location /p/ { satisfy any; allow all; captchaify_action block; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: curl/8.5.0
--- error_code: 403
--- response_body_like: (?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z



=== TEST 11: satisfy any: a pass of ours does not skip other access checks
--- config
location /p/ { satisfy any; deny all; captchaify_action let; }
--- user_files
>>> p/a.txt
hello
--- request
GET /p/a.txt
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code: 403
--- response_body_like: 403 Forbidden
