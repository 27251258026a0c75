# must_die: nginx has to refuse the configuration.
use Test::Nginx::Socket;

master_on();
workers(2);

# TEST 1: error_code + response_body; TEST 2: must_die; TEST 3: must_die +
# one no_error_log pattern; TEST 4: must_die + one error_log pattern.
plan tests => repeat_each() * (2 + 1 + 2 + 2);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: master + 2 workers serve requests
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok



=== TEST 2: bad "return" directive
--- config
    location = /t {
        return a b c;
    }
--- request
GET /t
--- must_die



=== TEST 3: unknown directive, exit code 1
--- config
    location = /t {
        no_such_directive on;
    }
--- must_die: 1
--- no_error_log
[alert]



=== TEST 4: the startup error is found in logs/error.log
must_die checks error_log against t/servroot/logs/error.log, not stderr.
nginx only writes config errors there when its compiled-in error log path is
prefix-relative (the default "logs/error.log"); Debian's nginx uses
--error-log-path=stderr, so skip there (the real Test::Nginx would fail too).
--- config
    location = /t {
        return a b c;
    }
--- must_die
--- error_log
invalid number of arguments in "return" directive
--- skip_eval
2: `$Test::Nginx::Util::NginxBinary -V 2>&1` =~ m{--error-log-path=(?!logs/)}
