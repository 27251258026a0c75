# Verified search-engine crawlers: a user agent claiming Googlebot or Bingbot is checked
# against the operator's published ranges (captchaify_crawler_ranges), else by
# forward-confirmed reverse DNS with nginx's resolver, here a small DNS server this file
# starts (t/lib/FakeDNS.pm). Verified crawlers pass (captchaify_verified_crawlers on), fakes
# are suspicious. Clients are told apart with realip.
use lib 't/lib';
use Captchaify;
use FakeDNS;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block) unless defined $block->must_die;
});

our $DNS_PORT = $ENV{TEST_CAPTCHAIFY_DNS_PORT} // 1953;
FakeDNS::start($DNS_PORT, {
    # A real Googlebot: its PTR name is in googlebot.com and leads back to it.
    '1.66.249.66.in-addr.arpa' => { PTR => ['crawl-66-249-66-1.googlebot.com'] },
    'crawl-66-249-66-1.googlebot.com' => { A => ['66.249.66.1'] },
    # A real Bingbot.
    '5.200.77.157.in-addr.arpa' => { PTR => ['msnbot-157-77-200-5.search.msn.com'] },
    'msnbot-157-77-200-5.search.msn.com' => { A => ['157.77.200.5'] },
    # Fakes: a PTR outside the domain; a PTR in the domain that leads elsewhere; none at all.
    '70.2.0.192.in-addr.arpa' => { PTR => ['crawl.googlebot.com.evil.example'] },
    '71.2.0.192.in-addr.arpa' => { PTR => ['crawl-192-0-2-71.googlebot.com'] },
    'crawl-192-0-2-71.googlebot.com' => { A => ['192.0.2.99'] },
    # A server that does not answer for this one.
    '73.2.0.192.in-addr.arpa' => 'silent',
});

our $GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
our $BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";
our $CAPTCHA = qr{<form[^>]+action="/\.captchaify/verify};
our $BLOCKED = qr{(?s)<h1 class="danger">Access denied</h1>};

repeat_each(1);
no_shuffle();
check_accum_error_log();
run_tests();

__DATA__

=== TEST 1: forward-confirmed reverse DNS: a real Googlebot and Bingbot pass a block location once checked; the first request goes by the user agent
--- config eval
"resolver 127.0.0.1:$::DNS_PORT ipv6=off valid=30s;
resolver_timeout 2s;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /b/ { captchaify_action block; captchaify_verified_crawlers on; }"
--- user_files
>>> b/a.txt
content
--- wait: 0.5
--- request eval
["GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 66.249.66.1",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 66.249.66.1",
"User-Agent: $::BINGBOT\nX-Forwarded-For: 157.77.200.5",
"User-Agent: $::BINGBOT\nX-Forwarded-For: 157.77.200.5",
]
--- error_code eval
[403, 200, 403, 200]
--- response_body_like eval
[$::BLOCKED, qr/\Acontent\n\z/, $::BLOCKED, qr/\Acontent\n\z/]



=== TEST 2: fake Googlebots (PTR outside the domain, PTR leading elsewhere, no PTR) are suspicious even where crawler user agents are not
--- config eval
"resolver 127.0.0.1:$::DNS_PORT ipv6=off valid=30s;
resolver_timeout 2s;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /c/ { captchaify_action captcha; captchaify_block_crawler off; captchaify_verified_crawlers on; }"
--- user_files
>>> c/a.txt
content
--- wait: 0.5
--- request eval
["GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt"]
--- more_headers eval
[
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.70",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.70",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.71",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.71",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.72",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.72",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 66.249.66.1",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 66.249.66.1",
]
--- error_code eval
[200, 403, 200, 403, 200, 403, 200, 200]
--- response_body_like eval
[qr/content/, $::CAPTCHA, qr/content/, $::CAPTCHA, qr/content/, $::CAPTCHA, qr/content/, qr/content/]



=== TEST 3: a resolver that does not answer leaves the claim unknown: the user-agent rule applies, and nothing waits
--- config eval
"resolver 127.0.0.1:$::DNS_PORT ipv6=off valid=30s;
resolver_timeout 1s;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /b/ { captchaify_action block; captchaify_verified_crawlers on; }
location /c/ { captchaify_action captcha; captchaify_block_crawler off; captchaify_verified_crawlers on; }"
--- user_files
>>> b/a.txt
content
>>> c/a.txt
content
--- wait: 1.5
--- request eval
["GET /b/a.txt", "GET /b/a.txt", "GET /c/a.txt"]
--- more_headers eval
[
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.73",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.73",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 192.0.2.73",
]
--- error_code eval
[403, 403, 200]



=== TEST 4: published ranges (Google's JSON format) verify without DNS; outside them, with no resolver, the claim is fake
--- http_config
captchaify_crawler_ranges google html/googlebot.json;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /b/ { captchaify_action block; captchaify_verified_crawlers on; }
location /off/ { captchaify_action block; }
--- user_files
>>> googlebot.json
{
  "creationTime": "2026-11-20T14:46:07.000000",
  "prefixes": [
    {"ipv6Prefix": "2001:4860:4801:10::/64"},
    {"ipv4Prefix": "66.249.64.0/27"},
    {"ipv4Prefix": "66.249.66.0/27"}
  ]
}
>>> b/a.txt
content
>>> off/a.txt
content
--- request eval
["GET /b/a.txt", "GET /b/a.txt", "GET /b/a.txt", "GET /off/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 66.249.66.1",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 2001:4860:4801:10::7",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 66.249.66.200",
"User-Agent: $::GOOGLEBOT\nX-Forwarded-For: 66.249.66.1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 66.249.66.200",
]
--- error_code eval
[200, 200, 403, 403, 200]



=== TEST 5: a bad ranges file fails nginx -t, naming the file
--- http_config
captchaify_crawler_ranges google html/googlebot.json;
--- config
location /x/ { captchaify_verified_crawlers on; }
--- user_files
>>> googlebot.json
{"creationTime": "2026-11-20", "prefixes": [{"ipv4Prefix": "66.249.64.0/33"}]}
--- must_die
--- error_log eval
qr{"captchaify_crawler_ranges" directive: "\S+/html/googlebot\.json": }



=== TEST 6: an unknown crawler name fails nginx -t
--- http_config
captchaify_crawler_ranges duckduckgo html/list.txt;
--- config
location /x/ { captchaify_verified_crawlers on; }
--- must_die
--- error_log
"captchaify_crawler_ranges" directive: unknown crawler "duckduckgo", expected google, bing, apple or yandex
