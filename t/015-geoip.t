# Country and AS-number rules from a MaxMind-format database this file builds itself with the
# project's `captcha-mmdb` tool (CAPTCHAIFY_MMDB_TOOL, else target/tools/release/captcha-mmdb;
# scripts/test builds it), and from ip-api's answer when there is no database. Clients are
# told apart with realip.
use lib 't/lib';
use Captchaify;
use File::Temp qw(tempdir);
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block) unless defined $block->must_die;
});

our $DIR = tempdir(CLEANUP => 1);
our $TOOL = $ENV{CAPTCHAIFY_MMDB_TOOL} // 'target/tools/release/captcha-mmdb';
our ($GEO_DB, $ASN_DB, $GARBAGE) = ("$DIR/country.mmdb", "$DIR/asn.mmdb", "$DIR/garbage.mmdb");

sub build_db {
    my ($out, $type, $spec) = @_;
    open my $tool, '|-', $TOOL, 'build', $out, '--type', $type, '-'
        or die "cannot run $TOOL (build it: see the comment at the top): $!";
    print $tool $spec;
    close $tool or die "$TOOL could not build $out";
}

build_db($GEO_DB, 'GeoLite2-Country', <<'SPEC');
# TEST-NET-1 split in two countries, TEST-NET-3 in a third, an IPv6 range
192.0.2.0/25     country=CN
192.0.2.128/25   country=DE
203.0.113.0/24   country=RU
2001:db8:cc::/48 country=CN
SPEC
build_db($ASN_DB, 'GeoLite2-ASN', <<'SPEC');
192.0.2.0/24     asn=64500 org=Example Transit
198.51.100.0/24  asn=64511 org=Example Hosting
SPEC
open my $g, '>', $GARBAGE or die; print $g "this is not a database\n" x 10; close $g;

our $CAPTCHA = qr{<form[^>]+action="/\.captchaify/verify};
our $BLOCKED = qr{(?s)<h1 class="danger">Access denied</h1>};

repeat_each(1);
no_shuffle();
check_accum_error_log();
run_tests();

__DATA__

=== TEST 1: a country rule blocks one country and lets another pass a fight location; the variables name country and AS number
--- http_config eval
"captchaify_geoip_db $::GEO_DB $::ASN_DB;"
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
add_header X-Country $captchaify_country always;
add_header X-ASN $captchaify_asn always;
location /f/ { captchaify_action fight; captchaify_country CN RU block; captchaify_country de let; }
location /l/ { captchaify_action let; }
--- user_files
>>> f/a.txt
content
>>> l/a.txt
content
--- request eval
["GET /f/a.txt", "GET /f/a.txt", "GET /f/a.txt", "GET /f/a.txt", "GET /f/a.txt", "GET /l/a.txt", "GET /l/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.5",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.200",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 203.0.113.1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 2001:db8:cc::1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 198.51.100.1",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.5",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 10.0.0.1",
]
--- error_code eval
[403, 200, 403, 403, 403, 200, 200]
--- response_body_like eval
[$::BLOCKED, qr/\Acontent\n\z/, $::BLOCKED, $::BLOCKED, $::CAPTCHA, qr/content/, qr/content/]
--- raw_response_headers_like eval
[
qr/X-Country: CN\r\nX-ASN: 64500\r\n/,
qr/X-Country: DE\r\nX-ASN: 64500\r\n/,
qr/X-Country: RU\r\n/,
qr/X-Country: CN\r\n/,
qr/X-ASN: 64511\r\n/,
qr/X-Country: CN\r\nX-ASN: 64500\r\n/,
qr/\A(?!.*X-Country)(?!.*X-ASN)/s,
]
--- error_log eval
qr/captchaify: GeoIP: GeoLite2-Country \(built [^)]+\) \+ GeoLite2-ASN \(built [^)]+\)/



=== TEST 1b: the block page tells a client blocked by a country rule why; the log line names the rule
--- http_config eval
"captchaify_geoip_db $::GEO_DB $::ASN_DB;"
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /f/ { captchaify_action fight; captchaify_country CN block; }
--- user_files
>>> f/a.txt
content
--- request
GET /f/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.5\nAccept-Language: fr"
--- error_code: 403
--- response_body_like eval
qr{(?s)<h1 class="danger">Accès refusé</h1>.*<p class="message" role="alert">Votre connexion provient d’un pays ou d’un réseau que ce site ne dessert pas\.</p>}
--- error_log
captchaify: block (country or AS-number rule) (action "fight")



=== TEST 2: an AS-number rule fights a network under captcha; the strictest of country and AS rules wins
--- http_config eval
"captchaify_geoip_db $::GEO_DB $::ASN_DB;"
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties off;
location /c/ { captchaify_action captcha; captchaify_asn AS64511 fight; captchaify_asn 64500 let; captchaify_country CN block; }
--- user_files
>>> c/a.txt
content
--- request eval
["GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt", "GET /c/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 198.51.100.7",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.200",
"User-Agent: curl/8.0\nX-Forwarded-For: 192.0.2.200",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.7",
]
--- error_code eval
[403, 200, 200, 403]
--- response_body_like eval
[$::CAPTCHA, qr/\Acontent\n\z/, qr/\Acontent\n\z/, $::BLOCKED]



=== TEST 3: without a database, the country comes from ip-api once it has answered
--- http_config
captchaify_feed ipapi url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/json/;
--- config
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
captchaify_third_parties ipapi;
add_header X-Country $captchaify_country always;
location /json/ { captchaify_action let; default_type application/json; }
location /b/ { captchaify_action captcha; captchaify_country FR block; }
--- user_files
>>> json/192.0.2.90
{"status":"success","countryCode":"FR","as":"AS3215 Orange S.A.","proxy":false,"hosting":false,"query":"192.0.2.90"}
>>> b/a.txt
content
--- wait: 1
--- request eval
["GET /b/a.txt", "GET /b/a.txt"]
--- more_headers eval
[
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.90",
"User-Agent: $::FIREFOX\nX-Forwarded-For: 192.0.2.90",
]
--- error_code eval
[200, 403]
--- response_body_like eval
[qr/\Acontent\n\z/, $::BLOCKED]
--- raw_response_headers_like eval
[qr/\A(?!.*X-Country)/s, qr/X-Country: FR\r\n/]



=== TEST 4: a file that is not a MaxMind database fails nginx -t, naming it
--- http_config eval
"captchaify_geoip_db $::GARBAGE;"
--- config
location /x/ { captchaify_action captcha; }
--- must_die
--- error_log eval
qr{"captchaify_geoip_db" directive: "\S+/garbage\.mmdb" is not a MaxMind database}



=== TEST 5: rules without a database or ip-api fail nginx -t
--- config
location /x/ { captchaify_third_parties tor; captchaify_country CN block; }
--- must_die
--- error_log
captchaify: country and AS-number rules need a GeoIP database (captchaify_geoip_db), or ip-api asked about each visitor (ipapi in captchaify_third_parties, off by default)



=== TEST 5b: by default ip-api is off: a rule without a database fails nginx -t rather than match nobody
--- config
location /x/ { captchaify_action captcha; captchaify_asn 64500 block; }
--- must_die
--- error_log
captchaify: country and AS-number rules need a GeoIP database (captchaify_geoip_db), or ip-api asked about each visitor (ipapi in captchaify_third_parties, off by default)



=== TEST 5c: ip-api in another location does not count for a location that does not ask it
--- config
location /x/ { captchaify_action captcha; captchaify_country CN block; }
location /y/ { captchaify_action captcha; captchaify_third_parties tor ipapi; }
--- must_die
--- error_log
captchaify: country and AS-number rules need a GeoIP database



=== TEST 6: bad rules fail nginx -t, naming the directive
--- http_config eval
"captchaify_geoip_db $::GEO_DB;"
--- config
location /x/ { captchaify_country CHN block; }
--- must_die
--- error_log
"captchaify_country" directive: invalid country "CHN", expected a two-letter code such as DE



=== TEST 7: a country given twice at one level fails nginx -t
--- http_config eval
"captchaify_geoip_db $::GEO_DB;"
--- config
location /x/ { captchaify_country CN block; captchaify_country cn let; }
--- must_die
--- error_log
"captchaify_country" directive: country CN already has a rule here
