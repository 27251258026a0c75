#!/usr/bin/perl
# Written for scripts/nginx-tests, in the style of nginx's own suite: shows that a run of the
# suite really has the module loaded and in force, with the same globals as every file of the
# run (TEST_NGINX_GLOBALS, TEST_NGINX_GLOBALS_HTTP). Without it, a run "the same as bare
# nginx" could be one in which the module was never there. Run from the suite's folder (for
# its lib/): `cd ../shared/nginx-tests && perl /path/to/captchaify/t/nginx-tests/captchaify-loaded.t`.
# Skips itself when the globals load no captchaify module (the bare runs).

use warnings;
use strict;

use Test::More;

use lib 'lib';
use Test::Nginx;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $globals = $ENV{TEST_NGINX_GLOBALS} // '';
plan(skip_all => 'no captchaify module in TEST_NGINX_GLOBALS')
	unless $globals =~ /load_module\s+\S*captchaify\S*\.so/;

# The action the run sets at http level (captchaify_action let; or captcha;).
my ($action) = ($ENV{TEST_NGINX_GLOBALS_HTTP} // '') =~ /captchaify_action\s+(\w+)\s*;/;
plan(skip_all => 'no captchaify_action in TEST_NGINX_GLOBALS_HTTP') unless defined $action;

my $t = Test::Nginx->new()->has(qw/http/)->plan(6)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Action $captchaify_action always;
        add_header X-Status $captchaify_status always;

        location / {
        }

        location /blocked/ {
            captchaify_action block;
        }
    }
}

EOF

$t->write_file('index.html', 'SEEN');
$t->run();

###############################################################################

# The http-level action is in force in a location that sets none.
my $r = http_get('/');
like($r, qr/^X-Action: $action\x0d?$/m, "http-level captchaify_action $action in force");

# Under `let` every client passes; under `captcha` this client (no User-Agent: suspicious)
# passes only with the pass the captcha mode adds to every request.
like($r, qr/^X-Status: PASS\x0d?$/m, 'the module decided: PASS');
like($r, qr/SEEN/, 'the page is served');

# A location with `block`: a client without a User-Agent is suspicious, pass or not.
$r = http_get('/blocked/');
like($r, qr!^HTTP/1\.1 403 !, 'block: 403');
like($r, qr/Access denied/, 'block: the module\'s block page');

# The module logs its zone's capacities at start.
like($t->read_file('error.log'), qr/captchaify/, 'the module wrote to the error log');

###############################################################################
