# Page languages: Accept-Language negotiation, the chooser at /.captchaify/language, the
# remembered choice (cookie, or URL argument without cookies), right-to-left markup,
# captchaify_default_language, and languages added in a template directory.
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

our $FIREFOX = $Captchaify::FIREFOX;

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: no Accept-Language gives English
--- config
location /p/ { captchaify_action block; }
--- request
GET /p/a.txt
--- error_code: 403
--- response_body_like eval
qr{(?s)<html lang="en" dir="ltr">.*<title>Access denied</title>.*<a href="/\.captchaify/language\?return=/p/a\.txt">Language: English</a>}



=== TEST 2: a region falls back to its language (de-AT gives German)
--- config
location /p/ { captchaify_action block; }
--- request
GET /p/a.txt
--- more_headers
Accept-Language: de-AT,de;q=0.9,en;q=0.5
--- error_code: 403
--- response_body_like eval
qr{(?s)<html lang="de" dir="ltr">.*<title>Zugriff verweigert</title>.*Sprache: Deutsch}



=== TEST 3: quality values decide, not the order
--- config
location /p/ { captchaify_action block; }
--- request
GET /p/a.txt
--- more_headers
Accept-Language: en;q=0.3, fr;q=0.8, es;q=0.5
--- error_code: 403
--- response_body_like eval
qr{<html lang="fr" dir="ltr">}



=== TEST 4: an unknown language, q=0 and garbage give the default
--- config
location /p/ { captchaify_action block; }
--- pipelined_requests eval
["GET /p/a.txt", "GET /p/b.txt", "GET /p/c.txt"]
--- more_headers
Accept-Language: xx-YY, de;q=0, ;;=,
--- error_code eval
[403, 403, 403]
--- response_body_like eval
[qr{<html lang="en" dir="ltr">}, qr{<html lang="en" dir="ltr">}, qr{<html lang="en" dir="ltr">}]



=== TEST 5: Arabic pages are right-to-left
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
"Accept-Language: ar-EG\nUser-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_like eval
qr{(?s)<html lang="ar" dir="rtl">.*<title>التحقق مطلوب</title>.*<label for="captchaify-answer">[^<]*\d+–\d+}



=== TEST 6: the chooser lists every language with plain links, in the current language
--- config
location /p/ { captchaify_action fight; }
--- request
GET /.captchaify/language?return=/p/a.txt%3Fx%3D1
--- more_headers
Accept-Language: it
--- error_code: 200
--- response_headers
Cache-Control: no-store
Content-Type: text/html; charset=utf-8
--- response_body_like eval
qr{(?s)\A(?!.*<script)(?=.*aria-current="true">Italiano</a>)(?=.*<a class="back" href="/p/a\.txt\?x=1">).*<html lang="it" dir="ltr">.*<title>Scegli la tua lingua</title>(?:.*<li><a href="/\.captchaify/language\?set=[a-z-]+&amp;return=/p/a\.txt%3Fx%3D1" hreflang="[a-z-]+" lang="[a-z-]+" dir="(?:ltr|rtl)"[^>]*>[^<]+</a></li>){12}}



=== TEST 7: choosing sets a cookie for a year and goes back; the cookie then wins over Accept-Language
--- config
location /p/ { captchaify_action block; }
--- pipelined_requests eval
["GET /.captchaify/language?set=pl&return=/p/a.txt", "GET /p/a.txt"]
--- more_headers eval
["Accept-Language: de", "Accept-Language: de\nCookie: captchaify_lang=pl"]
--- error_code eval
[303, 403]
--- response_headers_like eval
["Location: /p/a.txt\nSet-Cookie: captchaify_lang=pl; Path=/; Max-Age=31536000; SameSite=Lax\nCache-Control: no-store", "Cache-Control: no-store"]
--- response_body_like eval
[qr{See Other}, qr{<html lang="pl" dir="ltr">}]



=== TEST 8: without cookies the choice travels in the URL, and the form carries it on
--- config
location /p/ { captchaify_action fight; captchaify_without_cookies on; }
--- pipelined_requests eval
["GET /.captchaify/language?set=tr&return=/p/a.txt%3Fcaptchaify_lang%3Dde&nocookie=1", "GET /p/a.txt?captchaify_lang=tr"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[303, 403]
--- response_headers_like eval
["Location: /p/a.txt\\?captchaify_lang=tr", "Cache-Control: no-store"]
--- raw_response_headers_unlike eval
["Set-Cookie", "Set-Cookie"]
--- response_body_like eval
[qr{See Other}, qr{(?s)<html lang="tr" dir="ltr">.*<form method="post" action="/\.captchaify/verify\?captchaify_lang=tr">.*href="/\.captchaify/language\?return=/p/a\.txt%3Fcaptchaify_lang%3Dtr&amp;nocookie=1"}]



=== TEST 9: the chooser never sends anyone off-site, and ignores unknown languages
--- config
location /p/ { captchaify_action block; }
--- pipelined_requests eval
["GET /.captchaify/language?set=de&return=//evil.example/", "GET /.captchaify/language?set=de&return=https://evil.example/", "GET /.captchaify/language?set=klingon&return=/p/"]
--- error_code eval
[303, 303, 200]
--- response_headers_like eval
["Location: /\$", "Location: /\$", "Cache-Control: no-store"]
--- raw_response_headers_unlike eval
["evil", "evil", "Set-Cookie"]



=== TEST 10: the chooser answers GET and HEAD only
--- config
location /p/ { captchaify_action block; }
--- request
POST /.captchaify/language?set=de&return=/p/
x=1
--- error_code: 405



=== TEST 11: captchaify_default_language sets the language when the client says nothing
--- config
location /p/ { captchaify_action block; captchaify_default_language es; }
--- pipelined_requests eval
["GET /p/a.txt", "GET /p/b.txt"]
--- more_headers eval
["", "Accept-Language: nl"]
--- error_code eval
[403, 403]
--- response_body_like eval
[qr{<html lang="es" dir="ltr">}, qr{<html lang="nl" dir="ltr">}]



=== TEST 12: an unknown default language fails nginx -t, naming the file and line
--- config
location /p/ { captchaify_action block; captchaify_default_language xx; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_default_language" directive: "xx" is not one of the languages here \(en, ar, de, .*\) in \S+nginx\.conf:\d+/



=== TEST 13: a template directory's i18n/ folder adds a language, usable as the default
--- config
location /p/ { captchaify_action block; captchaify_template_dir html/tpl; captchaify_default_language eo; }
--- user_files eval
">>> tpl/block.html\n<p lang=\"{{lang}}\">{{t:block.title}}</p>\n>>> tpl/i18n/eo.txt\n" . do {
    # The English catalog with two strings changed: a whole catalog, as an operator writes it.
    open my $f, '<', 'templates/i18n/en.txt' or die "templates/i18n/en.txt: $!";
    my $t = do { local $/; <$f> };
    $t =~ s/_name = English/_name = Esperanto/;
    $t =~ s/= Access denied/= Aliro rifuzita/;
    $t
}
--- request
GET /p/a.txt
--- error_code: 403
--- response_body
<p lang="eo">Aliro rifuzita</p>



=== TEST 14: a broken catalog in a template directory fails nginx -t, naming it and the line
--- config
location /p/ { captchaify_action block; captchaify_template_dir html/tpl; }
--- user_files eval
">>> tpl/block.html\n<p>{{t:block.title}}</p>\n>>> tpl/i18n/xx.txt\n" . do {
    open my $f, '<', 'templates/i18n/en.txt' or die "templates/i18n/en.txt: $!";
    my $t = do { local $/; <$f> };
    $t =~ s/^(captcha\.intro = .*)\{path\}/$1\{pfad\}/m;
    $t
}
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_template_dir" directive: \S+tpl\/i18n\/xx\.txt:\d+: "captcha\.intro" must use exactly the placeholders of the reference: \{path\} in \S+nginx\.conf:\d+/



=== TEST 15: a catalog lacking a key fails nginx -t, naming the key
--- config
location /p/ { captchaify_action block; captchaify_template_dir html/tpl; }
--- user_files
>>> tpl/block.html
<p>{{t:block.title}}</p>
>>> tpl/i18n/xx.txt
_name = Broken
block.title = Kaputt
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_template_dir" directive: \S+tpl\/i18n\/xx\.txt: key "footer" is missing .* in \S+nginx\.conf:\d+/
