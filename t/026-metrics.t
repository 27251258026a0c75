# captchaify_metrics: the counters in Prometheus's text format, counted by the requests the
# block sends before it scrapes. The full path (a solve, promtool, a reload, a real
# Prometheus) is t/e2e/metrics.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    return if defined $block->must_die;
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block);
});

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: each verdict is counted under its location's name; the scrape itself is not
--- config
location /fight/ { captchaify_action fight; }
location /open/ { captchaify_action captcha; }
location /shut/ { captchaify_action block; }
location = /metrics { captchaify_metrics; }
--- user_files
>>> fight/a.txt
a
>>> open/a.txt
a
>>> shut/a.txt
a
--- request eval
["GET /fight/a.txt", "GET /open/a.txt", "GET /open/a.txt", "GET /shut/a.txt", "GET /open/a.txt", "GET /metrics", "GET /metrics"]
--- more_headers eval
[("User-Agent: $::FIREFOX") x 3, ("User-Agent: curl/8.0") x 2, ("User-Agent: $::FIREFOX") x 2]
--- error_code eval
[403, 200, 200, 403, 403, 200, 200]
--- response_body_like eval
[qr/captcha/, qr/a/, qr/a/, qr/./, qr/captcha/, qr/./,
qr/(?m)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/fight\/",verdict="challenged"\} 1$)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/open\/",verdict="passed"\} 2$)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/open\/",verdict="challenged"\} 1$)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/shut\/",verdict="blocked"\} 1$)(?=[\s\S]*^captchaify_challenges_total\{kind="text",hardness="2",event="issued"\} 2$)(?![\s\S]*location="localhost \/metrics")/]



=== TEST 2: captchaify_metrics_name labels a location, and is inherited
--- config
captchaify_metrics_name "whole site";
location /a/ { captchaify_action fight; }
location /b/ { captchaify_action fight; }
location /c/ { captchaify_action fight; captchaify_metrics_name login; }
location = /metrics { captchaify_metrics; }
--- user_files
>>> a/x
a
>>> b/x
a
>>> c/x
a
--- request eval
["GET /a/x", "GET /b/x", "GET /c/x", "GET /metrics"]
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code eval
[403, 403, 403, 200]
--- response_body_like eval
[qr/captcha/, qr/captcha/, qr/captcha/,
qr/(?m)(?=[\s\S]*^captchaify_requests_total\{location="whole site",verdict="challenged"\} 2$)(?=[\s\S]*^captchaify_requests_total\{location="login",verdict="challenged"\} 1$)/]



=== TEST 3: dry run and the rate limit have their own verdicts
--- config
location /dry/ { captchaify_action fight; captchaify_dry_run on; }
location /slow/ { captchaify_action captcha; captchaify_rate_limit 1r/m; }
location = /metrics { captchaify_metrics; }
--- user_files
>>> dry/x
a
>>> slow/x
a
--- request eval
["GET /dry/x", "GET /slow/x", "GET /slow/x", "GET /metrics"]
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
--- error_code eval
[200, 200, 429, 200]
--- response_body_like eval
[qr/a/, qr/a/, qr/Too many requests/,
qr/(?m)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/dry\/",verdict="dry_run"\} 1$)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/dry\/",verdict="challenged"\} 0$)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/slow\/",verdict="rate_limited"\} 1$)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/slow\/",verdict="passed"\} 1$)/]



=== TEST 4: the format's headers, no-store, and GET and HEAD only
--- config
location = /metrics { captchaify_metrics; }
--- request eval
["GET /metrics", "HEAD /metrics", "POST /metrics\nx"]
--- error_code eval
[200, 200, 405]
--- response_headers eval
["Content-Type: text/plain; version=0.0.4; charset=utf-8\nCache-Control: no-store", "Content-Type: text/plain; version=0.0.4; charset=utf-8", "Allow: GET, HEAD\nCache-Control: no-store"]
--- response_body_like eval
[qr/\A# HELP captchaify_requests_total .*\n# TYPE captchaify_requests_total counter\n/, qr/\A\z/, qr/405/]



=== TEST 5: captchaify_metrics takes no argument
--- config
location = /metrics { captchaify_metrics on; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid number of arguments in "captchaify_metrics" directive in \S+nginx\.conf:\d+/



=== TEST 6: captchaify_metrics belongs in a location
--- http_config
server { listen 127.0.0.1:1; captchaify_metrics; }
--- config
location / { }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_metrics" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 7: a location that already has a content handler
--- config
location = /metrics { stub_status; captchaify_metrics; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_metrics" directive: this location already has a content handler in \S+nginx\.conf:\d+/



=== TEST 8: a metrics name must be printable and fit
--- config
location / { captchaify_action fight; captchaify_metrics_name ""; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_metrics_name" directive: invalid name "", expected 1 to 96 bytes without control characters in \S+nginx\.conf:\d+/



=== TEST 9: a content handler written after captchaify_metrics would replace it: nginx -t says so
--- config
location = /metrics { captchaify_metrics; proxy_pass http://127.0.0.1:1; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_metrics" directive in \S+nginx\.conf:\d+: another content handler in its location replaced it/



=== TEST 10: the metrics location is not decided by an action it inherits: Prometheus gets the counters, not a captcha
--- config
captchaify_action fight;
location /p/ { }
location = /metrics { captchaify_metrics; }
--- user_files
>>> p/a
a
--- request eval
["GET /p/a", "GET /metrics"]
--- more_headers
User-Agent: Prometheus/2.42.0
--- error_code eval
[403, 200]
--- response_body_like eval
[qr/captcha/, qr/(?m)(?=[\s\S]*^captchaify_requests_total\{location="localhost \/p\/",verdict="challenged"\} 1$)(?![\s\S]*location="localhost \/metrics")/]
