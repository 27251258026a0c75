# Every bad directive fails `nginx -t` (and start-up) with a message naming file and line.
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: unknown action
--- config
location /p/ { captchaify_action maybe; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_action" directive: invalid action "maybe", expected let, block, fight or captcha in \S+nginx\.conf:\d+/



=== TEST 2: action is case-sensitive, as nginx's own keywords are
--- config
location /p/ { captchaify_action Fight; }
--- must_die
--- error_log eval
qr/invalid action "Fight".* in \S+nginx\.conf:\d+/



=== TEST 3: hardness out of range
--- config
location /p/ { captchaify_hardness 4; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_hardness" directive: invalid hardness "4", expected 1, 2 or 3 in \S+nginx\.conf:\d+/



=== TEST 4: hardness not a number
--- config
captchaify_hardness hard;
--- must_die
--- error_log eval
qr/invalid hardness "hard"/



=== TEST 5: dry_run takes on or off
--- config
location /p/ { captchaify_dry_run yes; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_dry_run" directive: invalid value "yes", expected on or off in \S+nginx\.conf:\d+/



=== TEST 6: block_crawler takes on or off
--- config
location /p/ { captchaify_block_crawler 1; }
--- must_die
--- error_log eval
qr/"captchaify_block_crawler" directive: invalid value "1", expected on or off in \S+nginx\.conf:\d+/



=== TEST 7: a directive twice at one level
--- config
location /p/ { captchaify_action let; captchaify_action block; }
--- must_die
--- error_log eval
qr/"captchaify_action" directive: is duplicate in \S+nginx\.conf:\d+/



=== TEST 8: missing argument
--- config
location /p/ { captchaify_action; }
--- must_die
--- error_log eval
qr/invalid number of arguments in "captchaify_action" directive in \S+nginx\.conf:\d+/



=== TEST 9: too many arguments
--- config
location /p/ { captchaify_action fight block; }
--- must_die
--- error_log eval
qr/invalid number of arguments in "captchaify_action" directive/



=== TEST 10: zone syntax
--- http_config
captchaify_zone shield:10m;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/"captchaify_zone" directive: invalid parameter "shield:10m", expected zone=NAME:SIZE in \S+nginx\.conf:\d+/



=== TEST 11: zone size
--- http_config
captchaify_zone zone=shield:lots;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/invalid zone size "lots", expected e.g. 512k or 10m/



=== TEST 12: zone too small
--- http_config
captchaify_zone zone=shield:8k;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/zone "shield" is too small: 8192 bytes, at least 131072 are needed in \S+nginx\.conf:\d+/



=== TEST 13: zone only at http level
--- config
captchaify_zone zone=shield:1m;
--- must_die
--- error_log eval
qr/"captchaify_zone" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 14: two zones
--- http_config
captchaify_zone zone=one:1m;
captchaify_zone zone=two:1m;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/"captchaify_zone" directive: is duplicate in \S+nginx\.conf:\d+/



=== TEST 15: a zone name taken by another module
--- http_config
limit_req_zone $binary_remote_addr zone=shared:1m rate=1r/s;
captchaify_zone zone=shared:1m;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/the shared memory zone "shared" is already declared for a different use/



=== TEST 16: a secret file that does not exist
--- http_config
captchaify_secret_file /nonexistent/secret.key;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/"captchaify_secret_file" directive: cannot read secret file "\/nonexistent\/secret\.key": .* in \S+nginx\.conf:\d+/



=== TEST 17: a secret file that is too short
--- http_config
captchaify_secret_file html/short.key;
--- config
location /p/ { captchaify_action fight; }
--- user_files
>>> short.key
tooshort
--- must_die
--- error_log eval
qr/secret file "\S+short\.key" holds 8 bytes, at least 32 random bytes are needed in \S+nginx\.conf:\d+/



=== TEST 18: the previous secret of a rotation is checked too
--- http_config
captchaify_secret_file html/new.key html/old.key;
--- config
location /p/ { captchaify_action fight; }
--- user_files
>>> new.key
0123456789abcdef0123456789abcdef
>>> old.key
short
--- must_die
--- error_log eval
qr/secret file "\S+old\.key" holds 5 bytes/



=== TEST 19: secret files only at http level
--- config
captchaify_secret_file html/new.key;
--- must_die
--- error_log eval
qr/"captchaify_secret_file" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 20: verification age: a time, within bounds
--- config
location /p/ { captchaify_verification_age 1week; }
--- must_die
--- error_log eval
qr/"captchaify_verification_age" directive: invalid time "1week", expected e\.g\. 90s, 30m, 1h or 7d in \S+nginx\.conf:\d+/



=== TEST 21: verification age too short
--- config
location /p/ { captchaify_verification_age 5s; }
--- must_die
--- error_log eval
qr/time "5s" is out of range \(60 to 31536000 seconds\)/



=== TEST 22: without_cookies takes on or off
--- config
location /p/ { captchaify_without_cookies maybe; }
--- must_die
--- error_log eval
qr/"captchaify_without_cookies" directive: invalid value "maybe", expected on or off/



=== TEST 23: max_failures: a number, and an optional window
--- http_config
captchaify_max_failures 0 2h;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/"captchaify_max_failures" directive: invalid number "0", expected 1 to 1000 in \S+nginx\.conf:\d+/



=== TEST 24: max_failures window
--- http_config
captchaify_max_failures 3 forever;
--- config
location /p/ { captchaify_action fight; }
--- must_die
--- error_log eval
qr/"captchaify_max_failures" directive: invalid time "forever"/



=== TEST 25: bad values fail nginx -t with the directive, file and line
--- config
location /p/ { captchaify_rate_limit 12r/h; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"captchaify_rate_limit" directive: invalid rate "12r\/h", expected N r\/s or N r\/m \(e\.g\. 120r\/m\) with N from 1 to 1000000 in .*nginx\.conf:\d+/



=== TEST 26: max_rate_limit takes only cooldown=
--- config
location /p/ { captchaify_max_rate_limit 10r/s wait=5s; }
--- must_die
--- error_log eval
qr/"captchaify_max_rate_limit" directive: invalid parameter "wait=5s", expected cooldown=TIME in .*nginx\.conf:\d+/



=== TEST 27: the status must be 400 to 599
--- config
location /p/ { captchaify_rate_limit_status 302; }
--- must_die
--- error_log eval
qr/"captchaify_rate_limit_status" directive: invalid status "302", expected a code from 400 to 599 in .*nginx\.conf:\d+/



=== TEST 28: the IPv6 prefix must be 1 to 128
--- config
location /p/ { captchaify_ipv6_prefix 129; }
--- must_die
--- error_log eval
qr/"captchaify_ipv6_prefix" directive: invalid number "129", expected 1 to 128 in .*nginx\.conf:\d+/
