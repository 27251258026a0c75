# CrowdSec decisions, against a real CrowdSec Local API (Debian's crowdsec 1.4.6, run on
# loopback by scripts/crowdsec-lapi): the parts that need no clock. At load time this file
# starts its own LAPI on 127.0.0.1:8102, registers a bouncer with a fixed key and a machine,
# and adds the decisions below with cscli; every block's nginx then pulls them at start-up
# (`GET /v1/decisions/stream?startup=true`), and the block's `--- init` waits for the
# "decisions in force" line before its requests. The LAPI is stopped at END. Clients are told
# apart with realip and X-Forwarded-For from 127.0.0.1. Timings, deletions, outages, reloads
# and the fleet (alerts from one nginx enforced by another) are in t/e2e/crowdsec.
use strict;
use warnings;
use Time::HiRes ();

our $LAPI = "scripts/crowdsec-lapi";
BEGIN {
    # Without the package there is nothing to test against: skip, saying why.
    my $out = `scripts/crowdsec-lapi install 2>&1`;
    if ($? != 0) {
        require Test::More;
        my @lines = grep { length } split /\n/, $out;
        Test::More::plan(skip_all => "no CrowdSec LAPI: 'scripts/crowdsec-lapi install' failed: "
            . ($lines[-1] // "exit status " . ($? >> 8)));
    }
}

use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

our $PORT = 8102;
our $URL = "http://127.0.0.1:$PORT";
our $KEY = "0123456789abcdef0123456789ab0018";   # the bouncer's key, chosen here
our $MACHINE = "t018-machine";
our $MACHINE_PASSWORD = "t018 machine password";
# Anything nginx is told of the LAPI goes through $TEST_NGINX_CROWDSEC_URL in the configs.
$ENV{TEST_NGINX_CROWDSEC_URL} = $URL;
$ENV{TEST_NGINX_CROWDSEC_DOWN} = "http://127.0.0.1:8109";   # nothing listens there

# The decisions, all added before any block runs.
our $BAN = "192.0.2.10";          # ban
our $CAPTCHA = "192.0.2.20";      # captcha
our $UNKNOWN = "192.0.2.30";      # a type the module does not know: throttle
our $BOTH = "192.0.2.40";         # captcha and ban
our $DELETED = "192.0.2.50";      # ban, deleted again: in startup's "deleted" list
our $EXPIRED = "192.0.2.51";      # ban for 1 s, expired before the first block
our $V6 = "2001:db8::10";         # ban
our $CLEAN = "192.0.2.99";        # no decision
# A /24 ban, and a /24 captcha holding an address banned on its own.
our $RANGE = "198.51.100";        # .0/24 ban
our $CAPRANGE = "203.0.113";      # .0/24 captcha; .7 ban
our $LIVE = 9;                    # live decisions: the count of the first pull

our $CAPTCHA_PAGE = qr{<form[^>]+action="/\.captchaify/verify};
our $BLOCKED = qr{(?s)<h1 class="danger">Access denied</h1>};
# The block page of a CrowdSec decision says so.
our $BANNED = qr{(?s)<h1 class="danger">Access denied</h1>.*<p class="message" role="alert">Your address was recently reported for abuse to a shared blocklist \(CrowdSec\) that this site uses\.</p>};
our $CONTENT = qr/\Acontent\n\z/;
sub as { my ($address) = @_; "User-Agent: $FIREFOX\nX-Forwarded-For: $address" }
sub answer_form { my ($token, $answer) = @_; "POST /.captchaify/verify\nchallenge=$token&answer=$answer" }

# ------------------------------------------------------------------------------- the LAPI

our $DIR = `mktemp -d /tmp/captchaify-t018.XXXXXX`;
chomp $DIR;
our $STARTED = 0;

sub lapi {   # lapi(ARGS...): runs scripts/crowdsec-lapi, returns its stdout; dies if it fails
    my @args = @_;
    my $out = `$LAPI @args 2>$DIR/lapi.err`;
    if ($? != 0) {
        my $err = do { local (@ARGV, $/) = "$DIR/lapi.err"; <> } // '';
        die "scripts/crowdsec-lapi @args failed: $err";
    }
    chomp $out;
    return $out;
}
sub cscli { lapi("cscli", $DIR, "--error", map { "'$_'" } @_) }

END {
    local $?;   # keep the test's exit status
    if ($STARTED) { system("$LAPI stop $DIR 2>/dev/null") }
    system("rm", "-rf", $DIR) if $DIR && $DIR =~ m{^/tmp/captchaify-t018\.};
}

eval {
    lapi("start", $DIR, $PORT) eq $URL or die "start did not print $URL\n";
    $STARTED = 1;
    lapi("bouncer", $DIR, "t018-nginx", $KEY) eq $KEY or die "the bouncer did not get its key\n";
    lapi("machine", $DIR, $MACHINE, "'$MACHINE_PASSWORD'");
    cscli(qw(decisions add --duration 1s --ip), $EXPIRED);
    my $expires = Time::HiRes::time() + 1.2;
    cscli(qw(decisions add --type ban --duration 1h --ip), $BAN);
    cscli(qw(decisions add --type captcha --duration 1h --ip), $CAPTCHA);
    cscli(qw(decisions add --type throttle --duration 1h --ip), $UNKNOWN);
    cscli(qw(decisions add --type captcha --duration 1h --ip), $BOTH);
    cscli(qw(decisions add --type ban --duration 1h --ip), $BOTH);
    cscli(qw(decisions add --type ban --duration 1h --ip), $DELETED);
    cscli(qw(decisions delete --ip), $DELETED);
    cscli(qw(decisions add --type ban --duration 1h --ip), $V6);
    cscli(qw(decisions add --type ban --duration 1h --range), "$RANGE.0/24");
    cscli(qw(decisions add --type captcha --duration 1h --range), "$CAPRANGE.0/24");
    cscli(qw(decisions add --type ban --duration 1h --ip), "$CAPRANGE.7");
    my $left = $expires - Time::HiRes::time();
    Time::HiRes::sleep($left) if $left > 0;
    1;
} or do {
    my $error = $@;
    Test::More::fail("a CrowdSec LAPI on $URL with this file's decisions: $error");
    exit 1;
};

# wait_for_log(REGEX, SECONDS): polls this block's error.log until a line matches. A block's
# `--- init` (run once its nginx is up, before the requests) uses it: the first pull is made
# in the background right after start-up, and the requests must not overtake it.
sub wait_for_log {
    my ($re, $seconds) = (@_, 10);
    my $log = server_root() . "/logs/error.log";
    my $deadline = Time::HiRes::time() + $seconds;
    while (Time::HiRes::time() < $deadline) {
        if (open my $in, '<', $log) {
            while (<$in>) { return 1 if $_ =~ $re }
        }
        Time::HiRes::sleep(0.05);
    }
    warn "waited $seconds s in vain for $re in $log\n";
    return 0;
}
our $LOADED = qr/captchaify: crowdsec: \d+ decisions in force from /;

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    # The bouncer's key, in every block; third-party sources off: nothing leaves but to the LAPI.
    $block->set_value("user_files", ">>> crowdsec.key\n$KEY\n" . ($block->user_files // ''));
    $block->set_value("http_config", "captchaify_third_parties off;\n" . $block->http_config);
    return if defined $block->must_die;
    Captchaify::clean_log($block);
    if (!defined $block->init && $block->http_config =~ /captchaify_crowdsec_lapi/) {
        $block->set_value("init", 'main::wait_for_log($main::LOADED)');
    }
});

repeat_each(1);
# The pull lands in the log before the requests: every check reads the whole log.
check_accum_error_log();
no_shuffle();
run_tests();

# What the LAPI saw of us: the User-Agent of every pull becomes the bouncer's type and version.
{
    my $json = eval { lapi("cscli", $DIR, "--error", "bouncers", "list", "-o", "json") } // '[]';
    my ($bouncer) = $json =~ /(\{[^{}]*"name":\s*"t018-nginx"[^{}]*\})/s;
    $bouncer //= '';
    Test::More::like($bouncer, qr/"type":\s*"crowdsec-captchaify-bouncer"/,
        "the LAPI knows the bouncer as crowdsec-captchaify-bouncer (its User-Agent)");
    Test::More::like($bouncer, qr/"version":\s*"v?\d+\.\d+\.\d+[^"]*"/,
        "with a version from the User-Agent");
    Test::More::like($bouncer, qr/"last_pull":\s*"\d{4}-/, "and it pulled");
}

__DATA__

=== TEST 1: a banned address gets the block page under captcha, fight and block; others pass; the pull is logged
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
add_header X-Status $captchaify_status always;
location /c/ { captchaify_action captcha; }
location /f/ { captchaify_action fight; }
location /b/ { captchaify_action block; }
--- user_files
>>> c/a.txt
content
>>> f/a.txt
content
>>> b/a.txt
content
--- request eval
["GET /c/a.txt", "GET /f/a.txt", "GET /b/a.txt", "GET /c/a.txt", "GET /b/a.txt", "GET /f/a.txt"]
--- more_headers eval
[::as($::BAN), ::as($::BAN), ::as($::BAN), ::as($::CLEAN), ::as($::CLEAN), ::as($::CLEAN)]
--- error_code eval
[403, 403, 403, 200, 200, 403]
--- response_headers eval
["X-Status: BLOCK", "X-Status: BLOCK", "X-Status: BLOCK", "X-Status: PASS", "X-Status: PASS", "X-Status: CHALLENGE"]
--- response_body_like eval
[($::BANNED) x 3, $::CONTENT, $::CONTENT, $::CAPTCHA_PAGE]
--- error_log eval
[qr{\[notice\] .*captchaify: crowdsec: $::LIVE decisions in force from http://127\.0\.0\.1:8102/? \(full pull: \d+ bytes in \d+ ms, written in \d+ ms\)},
 'captchaify: block (CrowdSec ban) (action "captcha")']



=== TEST 2: a banned IPv6 address, also as an IPv4-mapped client; another /64 passes
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /c/ { captchaify_action captcha; }
--- user_files
>>> c/a.txt
content
--- request eval
[("GET /c/a.txt") x 4]
--- more_headers eval
[::as($::V6), ::as("2001:db8:1::10"), ::as("::ffff:$::BAN"), ::as("::ffff:$::CLEAN")]
--- error_code eval
[403, 200, 403, 200]
--- response_body_like eval
[$::BLOCKED, $::CONTENT, $::BLOCKED, $::CONTENT]



=== TEST 3: a captcha decision: the captcha under captcha, the block page under block, nothing under let
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
add_header X-Status $captchaify_status always;
location /c/ { captchaify_action captcha; }
location /b/ { captchaify_action block; }
location /l/ { captchaify_action let; }
--- user_files
>>> c/a.txt
content
>>> b/a.txt
content
>>> l/a.txt
content
--- request eval
["GET /c/a.txt", "GET /b/a.txt", "GET /l/a.txt"]
--- more_headers eval
[::as($::CAPTCHA), ::as($::CAPTCHA), ::as($::CAPTCHA)]
--- error_code eval
[403, 403, 200]
--- response_headers eval
["X-Status: CHALLENGE", "X-Status: BLOCK", ""]
--- response_body_like eval
[$::CAPTCHA_PAGE, $::BLOCKED, $::CONTENT]



=== TEST 4: a captcha decision is satisfied by solving the captcha: the right answer earns a pass, a pass opens the page
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
add_header X-Status $captchaify_status always;
location /c/ { captchaify_action captcha; }
--- user_files
>>> c/a.txt
content
--- request eval
[::answer_form(Captchaify::challenge_token(address => $::CAPTCHA, ua => $::FIREFOX, answer => "HXMRU4", return => "/c/a.txt"), "HXMRU4"),
 "GET /c/a.txt",
 "GET /c/a.txt"]
--- more_headers eval
[::as($::CAPTCHA) . "\nContent-Type: application/x-www-form-urlencoded",
 ::as($::CAPTCHA) . "\nCookie: captchaify=" . Captchaify::pass_token(address => $::CAPTCHA, ua => $::FIREFOX),
 ::as($::CAPTCHA) . "\nCookie: captchaify=" . Captchaify::pass_token(address => $::CLEAN, ua => $::FIREFOX)]
--- error_code eval
[303, 200, 403]
--- response_headers_like eval
["Location: ^/c/a\\.txt\$\nSet-Cookie: ^captchaify=v1\\.\\d{10}\\.2\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{16}\\.[A-Za-z0-9_-]{43}; .*",
 "X-Status: PASS",
 "X-Status: CHALLENGE"]
--- response_body_like eval
[qr/^/, $::CONTENT, $::CAPTCHA_PAGE]
--- error_log
captchaify: captcha solved



=== TEST 5: ban beats captcha: two decisions on one address, or a banned address inside a captcha range; a pass does not help
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /c/ { captchaify_action captcha; }
--- user_files
>>> c/a.txt
content
--- request eval
[("GET /c/a.txt") x 5]
--- more_headers eval
[::as($::BOTH),
 ::as($::BOTH) . "\nCookie: captchaify=" . Captchaify::pass_token(address => $::BOTH, ua => $::FIREFOX),
 ::as("$::CAPRANGE.7"),
 ::as("$::CAPRANGE.8"),
 ::as("$::CAPRANGE.8") . "\nCookie: captchaify=" . Captchaify::pass_token(address => "$::CAPRANGE.8", ua => $::FIREFOX)]
--- error_code eval
[403, 403, 403, 403, 200]
--- response_body_like eval
[$::BLOCKED, $::BLOCKED, $::BLOCKED, $::CAPTCHA_PAGE, $::CONTENT]



=== TEST 6: a /24 ban covers .0 and .255 and everything between, not the neighbouring /24s
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /c/ { captchaify_action captcha; }
--- user_files
>>> c/a.txt
content
--- request eval
[("GET /c/a.txt") x 5]
--- more_headers eval
[::as("198.51.100.0"), ::as("198.51.100.255"), ::as("198.51.100.77"), ::as("198.51.101.0"), ::as("198.51.99.255")]
--- error_code eval
[403, 403, 403, 200, 200]
--- response_body_like eval
[$::BLOCKED, $::BLOCKED, $::BLOCKED, $::CONTENT, $::CONTENT]



=== TEST 7: a deleted decision and an expired one are not enforced
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /b/ { captchaify_action block; }
--- user_files
>>> b/a.txt
content
--- request eval
[("GET /b/a.txt") x 3]
--- more_headers eval
[::as($::DELETED), ::as($::EXPIRED), ::as($::BAN)]
--- error_code eval
[200, 200, 403]



=== TEST 8: an unknown decision type follows the fallback: block by default
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /c/ { captchaify_action captcha; }
location /l/ { captchaify_action let; }
--- user_files
>>> c/a.txt
content
>>> l/a.txt
content
--- request eval
["GET /c/a.txt", "GET /l/a.txt"]
--- more_headers eval
[::as($::UNKNOWN), ::as($::UNKNOWN)]
--- error_code eval
[403, 200]
--- response_body_like eval
[$::BLOCKED, $::CONTENT]



=== TEST 9: fallback=pass lets an unknown type through; known types still apply
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key fallback=pass;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /c/ { captchaify_action captcha; }
--- user_files
>>> c/a.txt
content
--- request eval
[("GET /c/a.txt") x 3]
--- more_headers eval
[::as($::UNKNOWN), ::as($::BAN), ::as($::CAPTCHA)]
--- error_code eval
[200, 403, 403]
--- response_body_like eval
[$::CONTENT, $::BLOCKED, $::CAPTCHA_PAGE]



=== TEST 10: fallback=captcha gives an unknown type the captcha, which a pass satisfies
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key fallback=captcha;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /c/ { captchaify_action captcha; }
--- user_files
>>> c/a.txt
content
--- request eval
[("GET /c/a.txt") x 2]
--- more_headers eval
[::as($::UNKNOWN), ::as($::UNKNOWN) . "\nCookie: captchaify=" . Captchaify::pass_token(address => $::UNKNOWN, ua => $::FIREFOX)]
--- error_code eval
[403, 200]
--- response_body_like eval
[$::CAPTCHA_PAGE, $::CONTENT]



=== TEST 11: captchaify_crowdsec off: the location ignores the decisions; on again in a nested level
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /api/ { captchaify_action block; captchaify_crowdsec off; }
location /c/ { captchaify_action captcha; }
location /quiet/ {
    captchaify_action block;
    captchaify_crowdsec off;
    location /quiet/loud/ { captchaify_crowdsec on; }
}
--- user_files
>>> api/a.txt
content
>>> c/a.txt
content
>>> quiet/a.txt
content
>>> quiet/loud/a.txt
content
--- request eval
["GET /api/a.txt", "GET /api/a.txt", "GET /api/a.txt", "GET /c/a.txt", "GET /quiet/a.txt", "GET /quiet/loud/a.txt"]
--- more_headers eval
[::as($::BAN), ::as($::CAPTCHA), ::as("198.51.100.1"), ::as($::BAN), ::as($::BAN), ::as($::BAN)]
--- error_code eval
[200, 200, 200, 403, 200, 403]
--- response_body_like eval
[$::CONTENT, $::CONTENT, $::CONTENT, $::BLOCKED, $::CONTENT, $::BLOCKED]



=== TEST 12: captchaify_crowdsec off at server level; a location turns it on
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_crowdsec off;
location /c/ { captchaify_action captcha; }
location /on/ { captchaify_action captcha; captchaify_crowdsec on; }
--- user_files
>>> c/a.txt
content
>>> on/a.txt
content
--- request eval
["GET /c/a.txt", "GET /on/a.txt"]
--- more_headers eval
[::as($::BAN), ::as($::BAN)]
--- error_code eval
[200, 403]
--- response_body_like eval
[$::CONTENT, $::BLOCKED]



=== TEST 13: captchaify_action let passes every decision
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /l/ { captchaify_action let; }
--- user_files
>>> l/a.txt
content
--- request eval
[("GET /l/a.txt") x 5]
--- more_headers eval
[::as($::BAN), ::as($::CAPTCHA), ::as($::UNKNOWN), ::as("198.51.100.9"), ::as($::V6)]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
[($::CONTENT) x 5]



=== TEST 14: captchaify_allow beats a ban (an address, a part of a banned range) under block and fight
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_allow 192.0.2.10 198.51.100.0/28;
location /b/ { captchaify_action block; }
location /f/ { captchaify_action fight; }
--- user_files
>>> b/a.txt
content
>>> f/a.txt
content
--- request eval
["GET /b/a.txt", "GET /f/a.txt", "GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[::as($::BAN), ::as($::BAN), ::as("198.51.100.15"), ::as("198.51.100.16"), ::as($::CAPTCHA)]
--- error_code eval
[200, 200, 200, 403, 403]
--- response_body_like eval
[$::CONTENT, $::CONTENT, $::CONTENT, $::BLOCKED, $::BLOCKED]



=== TEST 15: the key file's surrounding whitespace is trimmed; the URL may end in a slash
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL/ key_file=html/spaced.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /b/ { captchaify_action block; }
--- user_files eval
">>> spaced.key

  \t$::KEY \t

>>> b/a.txt
content
"
--- request eval
[("GET /b/a.txt") x 2]
--- more_headers eval
[::as($::BAN), ::as($::CLEAN)]
--- error_code eval
[403, 200]
--- error_log eval
qr{\[notice\] .*captchaify: crowdsec: $::LIVE decisions in force from http://127\.0\.0\.1:8102/? \(full pull: \d+ bytes in \d+ ms, written in \d+ ms\)}



=== TEST 16: machine credentials (declared before the LAPI) change nothing for the decisions
--- http_config
captchaify_crowdsec_machine t018-machine password_file=html/machine.pw;
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key interval=2s timeout=2s;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /c/ { captchaify_action captcha; }
--- user_files
>>> machine.pw
t018 machine password
>>> c/a.txt
content
--- request eval
[("GET /c/a.txt") x 3]
--- more_headers eval
[::as($::BAN), ::as($::CAPTCHA), ::as($::CLEAN)]
--- error_code eval
[403, 403, 200]
--- response_body_like eval
[$::BLOCKED, $::CAPTCHA_PAGE, $::CONTENT]



=== TEST 17: a wrong key: the LAPI's 403 is logged as a warning, nginx runs and nothing is enforced
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/wrong.key;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /b/ { captchaify_action block; }
--- user_files
>>> wrong.key
ffffffffffffffffffffffffffffffff
>>> b/a.txt
content
--- init
main::wait_for_log(qr/\[warn\].*captchaify: crowdsec:/)
--- request eval
[("GET /b/a.txt") x 2]
--- more_headers eval
[::as($::BAN), ::as($::CLEAN)]
--- error_code eval
[200, 200]
--- error_log eval
qr{\[warn\] .*captchaify: crowdsec: cannot pull decisions from http://127\.0\.0\.1:8102/? .*\bHTTP 403\b.*; no decisions loaded yet; next try in \d+ s}
--- no_error_log
decisions in force



=== TEST 18: a LAPI that is down at start: nginx starts, warns once, and lets everyone pass
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_DOWN key_file=html/crowdsec.key interval=1s timeout=1s;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /b/ { captchaify_action block; }
--- user_files
>>> b/a.txt
content
--- init
main::wait_for_log(qr/\[warn\].*captchaify: crowdsec:/)
--- request eval
[("GET /b/a.txt") x 2]
--- more_headers eval
[::as($::BAN), ::as($::CLEAN)]
--- error_code eval
[200, 200]
--- error_log eval
qr{\[warn\] .*captchaify: crowdsec: cannot pull decisions from http://127\.0\.0\.1:8109/? .*; no decisions loaded yet; next try in \d+ s}
--- no_error_log
decisions in force



=== TEST 19: no key_file
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL interval=2s;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: .*key_file.* in \S+nginx\.conf:\d+}



=== TEST 20: a key file that does not exist
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/nowhere.key;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: .*\S+/html/nowhere\.key.* in \S+nginx\.conf:\d+}



=== TEST 21: a key file that cannot be read (a directory)
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/keys;
--- config
location /x/ { }
--- user_files
>>> keys/README
not a key
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: .*\S+/html/keys\b.* in \S+nginx\.conf:\d+}



=== TEST 22: an empty key file (blank lines only)
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/empty.key;
--- config
location /x/ { }
--- user_files eval
">>> empty.key
  

"
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: .*\S+/html/empty\.key.*empty.* in \S+nginx\.conf:\d+}i



=== TEST 23: a URL that is not http(s)
--- http_config
captchaify_crowdsec_lapi ftp://127.0.0.1:8102 key_file=html/crowdsec.key;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: .*"ftp://127\.0\.0\.1:8102".* in \S+nginx\.conf:\d+}



=== TEST 24: a URL without a host
--- http_config
captchaify_crowdsec_lapi http:// key_file=html/crowdsec.key;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: .*"http://".* in \S+nginx\.conf:\d+}



=== TEST 25: an unknown fallback
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key fallback=ban;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: invalid fallback "ban", expected pass, captcha or block in \S+nginx\.conf:\d+}



=== TEST 26: an unknown parameter
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key colour=blue;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: invalid parameter "colour=blue".* in \S+nginx\.conf:\d+}



=== TEST 27: an interval of zero
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key interval=0s;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive: .*"0s".* in \S+nginx\.conf:\d+}



=== TEST 28: captchaify_crowdsec_lapi belongs to http only
--- config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_lapi" directive is not allowed here in \S+nginx\.conf:\d+}



=== TEST 29: captchaify_crowdsec on without a LAPI
--- config
location /c/ { captchaify_action captcha; captchaify_crowdsec on; }
--- must_die
--- error_log eval
qr{\[emerg\].*captchaify_crowdsec\b.*captchaify_crowdsec_lapi}



=== TEST 30: captchaify_crowdsec takes on or off
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
--- config
location /c/ { captchaify_crowdsec yes; }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec" directive.*"yes".* in \S+nginx\.conf:\d+}



=== TEST 31: machine credentials without a LAPI
--- http_config
captchaify_crowdsec_machine t018-machine password_file=html/machine.pw;
--- config
location /x/ { }
--- user_files
>>> machine.pw
t018 machine password
--- must_die
--- error_log eval
qr{\[emerg\].*captchaify_crowdsec_machine\b.*captchaify_crowdsec_lapi}



=== TEST 32: machine credentials without a password file
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
captchaify_crowdsec_machine t018-machine;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_machine" directive: .*password_file.* in \S+nginx\.conf:\d+}



=== TEST 33: a password file that does not exist
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
captchaify_crowdsec_machine t018-machine password_file=html/nowhere.pw;
--- config
location /x/ { }
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_machine" directive: .*\S+/html/nowhere\.pw.* in \S+nginx\.conf:\d+}



=== TEST 34: a bad failures= count
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
captchaify_crowdsec_machine t018-machine password_file=html/machine.pw failures=0;
--- config
location /x/ { }
--- user_files
>>> machine.pw
t018 machine password
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_machine" directive: .*"failures=0".* in \S+nginx\.conf:\d+}



=== TEST 35: a bad flood= count
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
captchaify_crowdsec_machine t018-machine password_file=html/machine.pw flood=many;
--- config
location /x/ { }
--- user_files
>>> machine.pw
t018 machine password
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_machine" directive: .*"flood=many".* in \S+nginx\.conf:\d+}



=== TEST 36: an empty password file
--- http_config
captchaify_crowdsec_lapi $TEST_NGINX_CROWDSEC_URL key_file=html/crowdsec.key;
captchaify_crowdsec_machine t018-machine password_file=html/machine.pw;
--- config
location /x/ { }
--- user_files eval
">>> machine.pw

"
--- must_die
--- error_log eval
qr{\[emerg\].*"captchaify_crowdsec_machine" directive: .*\S+/html/machine\.pw.*empty.* in \S+nginx\.conf:\d+}i
