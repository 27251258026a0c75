# main_config, http_config, env_to_nginx, load_module lines in nginx.conf.
BEGIN { $ENV{TEST_NGINX_LOAD_MODULES} = '/nonexistent/ngx_compat_selftest_module.so' }

use Test::Nginx::Socket 'no_plan';

env_to_nginx('COMPAT_SELFTEST=yes');

no_shuffle();
run_tests();

# The generated nginx.conf of the last block has the load_module line.
open my $fh, '<', $Test::Nginx::Util::ConfFile or die $!;
my $conf = do { local $/; <$fh> };
like($conf, qr{^load_module /nonexistent/ngx_compat_selftest_module\.so;}m,
     'TEST_NGINX_LOAD_MODULES gives load_module lines');
like($conf, qr{^env COMPAT_SELFTEST=yes;}m, 'env_to_nginx');

__DATA__

=== TEST 1: the module cannot be loaded, so nginx dies
--- main_config
worker_rlimit_nofile 1024;
--- http_config
    map $uri $compat_selftest { default 1; }
--- config
    location = /t { return 200 $compat_selftest; }
--- must_die
