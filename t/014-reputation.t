# Who is suspicious by address: allow and deny lists (inline, from files, 100,000 ranges) and
# the Tor exit list, fetched in the background from this same nginx (a location serving the
# list as the Tor Project does: one address per line). Clients are told apart with realip.
# Refreshing, reloads, slow and hanging sources, ip-api and StopForumSpam against a stand-in
# server, and the timings are in t/e2e/feeds.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block) unless defined $block->must_die;
});

# 100,000 ranges: /24s spread over the IPv4 space, and /48s.
our $BIG_LIST = join "", map {
    my $n = $_ * 40_503 % 16_777_216;
    $_ % 5 ? sprintf("%d.%d.%d.0/24\n", ($n >> 16) & 255, ($n >> 8) & 255, $n & 255)
           : sprintf("2001:%x:%x::/48\n", 0xdb8 + ($_ >> 16), $_ & 0xffff)
} 1 .. 100_000;
# 7 * 40503 = 283521 = 4.83.129.0/24 is in the list; 4.83.128.0/24 is not.

# The captcha page answers 403, like the block page, with its form.
our $CAPTCHA = qr{<form[^>]+action="/\.captchaify/verify};
our $BLOCKED = qr{(?s)<h1 class="danger">Access denied</h1>};

repeat_each(1);
# Feeds load in the background: a log line may land in any request's window.
check_accum_error_log();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a deny-listed address gets the captcha under captcha, the block page under block, and passes under let
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_deny 192.0.2.0/24 2001:db8::/32;
captchaify_third_parties off;
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
["GET /c/a.txt", "GET /b/a.txt", "GET /l/a.txt", "GET /c/a.txt", "GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.9",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.9",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.9",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 198.51.100.9",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 198.51.100.9",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 2001:db8:1::5",
]
--- error_code eval
[403, 403, 200, 200, 200, 403]
--- response_body_like eval
[$::CAPTCHA, $::BLOCKED, qr/\Acontent\n\z/, qr/\Acontent\n\z/, qr/\Acontent\n\z/, $::BLOCKED]



=== TEST 2: an allow-listed address passes everything: a crawler user agent, block, fight, the deny list and the rate limit
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
captchaify_allow 203.0.113.7 198.51.100.0/28;
captchaify_deny 203.0.113.0/24;
captchaify_rate_limit 2r/m;
location /b/ { captchaify_action block; }
location /f/ { captchaify_action fight; }
--- user_files
>>> b/a.txt
content
>>> f/a.txt
content
--- request eval
["GET /b/a.txt", "GET /f/a.txt", "GET /f/a.txt", "GET /f/a.txt", "GET /b/a.txt", "GET /f/a.txt"]
--- more_headers eval
[
"User-Agent: curl/8.0\nX-Forwarded-For: 203.0.113.7",
"User-Agent: curl/8.0\nX-Forwarded-For: 198.51.100.15",
"User-Agent: curl/8.0\nX-Forwarded-For: 198.51.100.15",
"User-Agent: curl/8.0\nX-Forwarded-For: 198.51.100.15",
"User-Agent: curl/8.0\nX-Forwarded-For: 203.0.113.8",
"User-Agent: curl/8.0\nX-Forwarded-For: 198.51.100.16",
]
--- error_code eval
[200, 200, 200, 200, 403, 403]
--- response_body_like eval
[qr/\Acontent\n\z/, qr/\Acontent\n\z/, qr/\Acontent\n\z/, qr/\Acontent\n\z/, $::BLOCKED, $::CAPTCHA]



=== TEST 3: lists set in a location replace the inherited ones; several lines at one level add up
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
captchaify_action block;
captchaify_deny 192.0.2.1;
location /own/ { captchaify_deny 192.0.2.2; captchaify_deny 192.0.2.3; }
location /inherited/ { }
--- user_files
>>> own/a.txt
content
>>> inherited/a.txt
content
--- request eval
["GET /own/a.txt", "GET /own/a.txt", "GET /own/a.txt", "GET /inherited/a.txt", "GET /inherited/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.2",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.3",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.2",
]
--- error_code eval
[200, 403, 403, 403, 200]



=== TEST 4: a list file of 100,000 ranges, with comments, and an IPv4-mapped client
--- config eval
"set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /b/ { captchaify_action block; captchaify_deny file=html/big.txt; }"
--- user_files eval
">>> big.txt
# generated: 80,000 IPv4 /24s and 20,000 IPv6 /48s
$::BIG_LIST
>>> b/a.txt
content
"
--- request eval
[("GET /b/a.txt") x 5]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 4.83.129.77",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 4.83.128.77",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 2001:db8:5::1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 2001:db8:6::1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: ::ffff:4.83.129.1",
]
--- error_code eval
[403, 200, 403, 200, 403]



=== TEST 5: a bad entry fails nginx -t, naming the directive
--- config
location /x/ { captchaify_deny 192.0.2.0/33; }
--- must_die
--- error_log
"captchaify_deny" directive: invalid address or range "192.0.2.0/33"



=== TEST 6: a bad line in a list file fails nginx -t, naming the file and line
--- config
location /x/ { captchaify_allow file=html/allow.txt; }
--- user_files
>>> allow.txt
# office
192.0.2.0/24
not-an-address
--- must_die
--- error_log eval
qr{"captchaify_allow" directive: \S+/html/allow\.txt:3: invalid address or range "not-an-address"}



=== TEST 7: a missing list file fails nginx -t
--- config
location /x/ { captchaify_deny file=html/nowhere.txt; }
--- must_die
--- error_log eval
qr{"captchaify_deny" directive: cannot read list file "\S+/html/nowhere\.txt"}



=== TEST 8: Tor exits (fetched in the background) get the captcha under captcha, the block page under block, and pass under let
--- http_config
captchaify_feed tor url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/feeds/torbulkexitlist;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties tor;
location /feeds/ { captchaify_action let; default_type text/plain; }
location /c/ { captchaify_action captcha; }
location /b/ { captchaify_action block; }
location /l/ { captchaify_action let; }
--- user_files
>>> feeds/torbulkexitlist
192.0.2.66
2001:db8::66
198.51.100.200
>>> c/a.txt
content
>>> b/a.txt
content
>>> l/a.txt
content
--- wait: 1
--- request eval
["GET /l/a.txt", "GET /c/a.txt", "GET /b/a.txt", "GET /l/a.txt", "GET /b/a.txt", "GET /c/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 2001:db8::66",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.67",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.67",
]
--- error_code eval
[200, 403, 403, 200, 403, 200, 200]
--- response_body_like eval
[qr/content/, $::CAPTCHA, $::BLOCKED, qr/\Acontent\n\z/, $::BLOCKED, qr/\Acontent\n\z/, qr/\Acontent\n\z/]
--- error_log eval
qr{\[notice\] .*captchaify: tor: 3 exit addresses loaded from http://127\.0\.0\.1:\d+/feeds/torbulkexitlist in \d+ ms; next refresh in 3600 s}



=== TEST 9: the Tor list from a local file; a location with captchaify_third_parties off ignores it
--- http_config
captchaify_feed tor file=html/exits.txt;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /b/ { captchaify_action block; captchaify_third_parties tor; }
location /deaf/ { captchaify_action block; captchaify_third_parties off; }
--- user_files
>>> exits.txt
192.0.2.66
>>> b/a.txt
content
>>> deaf/a.txt
content
--- wait: 1
--- request eval
["GET /deaf/a.txt", "GET /b/a.txt", "GET /deaf/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66",
]
--- error_code eval
[200, 403, 200]
--- error_log eval
qr{captchaify: tor: 1 exit addresses loaded from \S+/html/exits\.txt}



=== TEST 10: an unreachable source: requests are not held up, nothing is listed, the failure is logged once
--- http_config
captchaify_feed tor url=http://127.0.0.1:1/torbulkexitlist timeout=2s;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /b/ { captchaify_action block; captchaify_third_parties tor; }
--- user_files
>>> b/a.txt
content
--- wait: 1
--- pipelined_requests eval
[("GET /b/a.txt") x 20]
--- more_headers
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
X-Forwarded-For: 192.0.2.66
--- error_code eval
[(200) x 20]
--- grep_error_log eval
qr/captchaify: tor: cannot load [^;]+; no list loaded yet; next try in 30 s/
--- grep_error_log_out eval
qr/\Acaptchaify: tor: cannot load http:\/\/127\.0\.0\.1:1\/torbulkexitlist: [^;\n]+; no list loaded yet; next try in 30 s\n\z/



=== TEST 11: a garbage answer (an HTML page served with 200) and an empty one are refused, and logged
--- http_config
captchaify_feed tor url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/feeds/garbage;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
location /feeds/ { captchaify_action let; }
location /b/ { captchaify_action block; captchaify_third_parties tor; }
--- user_files
>>> feeds/garbage
<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p></body></html>
>>> b/a.txt
content
--- wait: 1
--- request eval
["GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[("User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.66") x 2]
--- error_code eval
[200, 200]
--- error_log eval
qr{\[warn\] .*captchaify: tor: cannot load http://127\.0\.0\.1:\d+/feeds/garbage: [^;]+; no list loaded yet; next try in 30 s}



=== TEST 12: bad feed settings fail nginx -t
--- http_config
captchaify_feed tor url=ftp://example.org/list;
--- config
location /x/ { captchaify_action captcha; }
--- must_die
--- error_log
"captchaify_feed" directive: "ftp://example.org/list" is not an http:// or https:// URL



=== TEST 13: unknown sources in captchaify_third_parties fail nginx -t
--- config
location /x/ { captchaify_third_parties tor spamhaus; }
--- must_die
--- error_log
"captchaify_third_parties" directive: invalid source "spamhaus", expected tor, ipapi and stopforumspam (any of them) or off



=== TEST 14: ip-api: a proxy or hosting address passes its first request (lookup pending), then gets the captcha under captcha and the block page under block; let is untouched; a clean address passes
--- http_config
captchaify_feed ipapi url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/json/;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties ipapi;
location /json/ { captchaify_action let; default_type application/json; }
location /c/ { captchaify_action captcha; }
location /b/ { captchaify_action block; }
location /l/ { captchaify_action let; }
--- user_files
>>> json/192.0.2.10
{"status":"success","countryCode":"NL","as":"AS64496 Example Hosting B.V.","proxy":false,"hosting":true,"query":"192.0.2.10"}
>>> json/192.0.2.11
{"status":"success","countryCode":"DE","as":"AS3320 Deutsche Telekom AG","proxy":false,"hosting":false,"query":"192.0.2.11"}
>>> c/a.txt
content
>>> b/a.txt
content
>>> l/a.txt
content
--- wait: 1
--- request eval
["GET /c/a.txt", "GET /c/a.txt", "GET /b/a.txt", "GET /l/a.txt", "GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.10",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.11",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.11",
]
--- error_code eval
[200, 403, 403, 200, 200, 200]
--- response_body_like eval
[qr/\Acontent\n\z/, $::CAPTCHA, $::BLOCKED, qr/\Acontent\n\z/, qr/\Acontent\n\z/, qr/\Acontent\n\z/]
--- no_error_log
lookups fail



=== TEST 15: captchaify_lookup_pending captcha: an address not looked up yet gets the captcha, even under block
--- http_config
captchaify_feed ipapi url=http://127.0.0.1:1/json/ timeout=1s;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties ipapi;
captchaify_lookup_pending captcha;
location /c/ { captchaify_action captcha; }
location /b/ { captchaify_action block; }
--- user_files
>>> c/a.txt
content
>>> b/a.txt
content
--- request eval
["GET /c/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.30",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.31",
]
--- error_code eval
[403, 403]
--- response_body_like eval
[$::CAPTCHA, $::CAPTCHA]



=== TEST 16: a source that fails: the address is not held suspicious or pending forever, the failure is logged once
--- http_config
captchaify_feed ipapi url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/broken/;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties ipapi;
captchaify_lookup_pending captcha;
location /broken/ { captchaify_action let; return 200 "<html>Service Unavailable</html>"; }
location /c/ { captchaify_action captcha; }
--- user_files
>>> c/a.txt
content
--- wait: 1
--- request eval
["GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.40",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.40",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.41",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.41",
]
--- error_code eval
[403, 200, 403, 200]
--- grep_error_log eval
qr/captchaify: ipapi: lookups fail: [^;]+/
--- grep_error_log_out eval
qr/\Acaptchaify: ipapi: lookups fail: not JSON: [^\n]+\n\z/



=== TEST 17: private and loopback addresses are never sent to a per-address source
--- http_config
captchaify_feed ipapi url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/json/;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties ipapi;
captchaify_lookup_pending captcha;
location /json/ { captchaify_action let; default_type application/json; return 200 '{"status":"success","proxy":true,"hosting":true}'; }
location /b/ { captchaify_action block; }
--- user_files
>>> b/a.txt
content
--- wait: 1
--- request eval
["GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 10.1.2.3",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 10.1.2.3",
"User-Agent: $::FIREFOX\nX-Forwarded-For: fd00::5",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.50",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.50",
]
--- error_code eval
[200, 200, 200, 403, 403]
--- response_body_like eval
[qr/content/, qr/content/, qr/content/, $::CAPTCHA, $::BLOCKED]
--- grep_error_log eval
qr{http request line: "GET /json/\S+}
--- grep_error_log_out eval
qr{\A(http request line: "GET /json/192\.0\.2\.50\?fields=status,message,countryCode,as,proxy,hosting\n)?\z}



=== TEST 18: StopForumSpam: a listed address becomes suspicious once the answer is in; an unlisted one stays clean
--- http_config
captchaify_feed stopforumspam url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/api;
map $arg_ip $sfs_appears { 192.0.2.60 1; default 0; }
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties stopforumspam;
location = /api { captchaify_action let; default_type application/json; return 200 '{"success":1,"ip":{"value":"$arg_ip","appears":$sfs_appears,"frequency":$sfs_appears}}'; }
location /b/ { captchaify_action block; }
--- user_files
>>> b/a.txt
content
--- wait: 1
--- request eval
["GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.60",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.60",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.61",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.61",
]
--- error_code eval
[200, 403, 200, 200]
--- response_body_like eval
[qr/content/, $::BLOCKED, qr/content/, qr/content/]
