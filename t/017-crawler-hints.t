# Crawler hints: a crawler facing the captcha gets a page that carries the real page's title,
# meta description and OpenGraph tags, read once from the protected page by the module itself
# (a signed request to this same server) and kept in the shared zone. Until then, and for
# people, nothing changes.
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

our $GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
our $CAPTCHA = qr{<form[^>]+action="/\.captchaify/verify};

repeat_each(1);
no_shuffle();
check_accum_error_log();
run_tests();

__DATA__

=== TEST 1: the first crawler request gets the plain captcha; once the page is read, the captcha carries its title, description and OpenGraph tags; a person still gets the page
--- config
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/article.html
<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>How to grow tomatoes &amp; peppers</title>
<meta name="description" content="A short guide to growing tomatoes and peppers on a balcony.">
<meta property="og:title" content="Growing tomatoes">
<meta property="og:image" content="https://example.org/tomato.jpg">
<script>document.title = "<title>not this</title>";</script>
</head><body><h1>Tomatoes</h1><p>secret content</p></body></html>
--- wait: 1
--- request eval
["GET /p/article.html", "GET /p/article.html", "GET /p/article.html"]
--- more_headers eval
["User-Agent: $::GOOGLEBOT", "User-Agent: $::GOOGLEBOT", "User-Agent: $::FIREFOX"]
--- error_code eval
[403, 403, 200]
--- response_body_like eval
[
qr{(?s)\A(?!.*og:title)(?!.*secret content).*<title>[^<·]+</title>.*$::CAPTCHA},
qr{(?s)\A(?!.*secret content)(?!.*not this).*<title>How to grow tomatoes &amp; peppers · [^<]+</title>\n<meta name="description" content="A short guide to growing tomatoes and peppers on a balcony\.">\s*<meta property="og:title" content="Growing tomatoes">\s*<meta property="og:image" content="https://example\.org/tomato\.jpg">.*$::CAPTCHA},
qr{secret content},
]
--- error_log eval
qr{captchaify: crawler hints for localhost/p/article\.html: title "How to grow tomatoes & peppers", 3 meta tags}



=== TEST 2: markup in the page's title and tags comes out inert
--- config
location /p/ { captchaify_action captcha; }
--- user_files
>>> p/evil.html
<html><head><title>"><script>alert(1)</script></title>
<meta name="description" content='"><img src=x onerror=alert(2)>'>
<meta property="og:title" content="a&quot; onmouseover=&quot;alert(3)">
</head></html>
--- wait: 1
--- request eval
["GET /p/evil.html", "GET /p/evil.html"]
--- more_headers eval
["User-Agent: $::GOOGLEBOT", "User-Agent: $::GOOGLEBOT"]
--- error_code eval
[403, 403]
--- response_body_like eval
[qr{(?s)\A(?!.*<script>alert).*$::CAPTCHA}, qr{(?s)\A(?!.*<script>alert)(?!.*<img src=x).*<title>&quot;&gt;&lt;script&gt;alert\(1\)&lt;/script&gt; · .*content="&quot;&gt;&lt;img src=x onerror=alert\(2\)&gt;".*content="a&quot; onmouseover=&quot;alert\(3\)"}]



=== TEST 3: captchaify_crawler_hints off: crawlers get the plain captcha, and the page is never read
--- config
location /p/ { captchaify_action captcha; captchaify_crawler_hints off; }
--- user_files
>>> p/article.html
<html><head><title>Tomatoes</title></head></html>
--- wait: 1
--- request eval
["GET /p/article.html", "GET /p/article.html"]
--- more_headers eval
["User-Agent: $::GOOGLEBOT", "User-Agent: $::GOOGLEBOT"]
--- error_code eval
[403, 403]
--- response_body_unlike eval
[qr/Tomatoes/, qr/Tomatoes/]
--- no_error_log
crawler hints for



=== TEST 4: the fetch token cannot be forged, replayed on another URI, used after it expires, or used without the fetcher's user agent
--- config
location /p/ { captchaify_action fight; }
--- user_files
>>> p/a.html
<html><head><title>A</title></head><body>secret</body></html>
>>> p/b.html
<html><head><title>B</title></head><body>secret</body></html>
--- request eval
["GET /p/a.html", "GET /p/b.html", "GET /p/a.html", "GET /p/a.html", "GET /p/a.html"]
--- more_headers eval
[
"User-Agent: captchaify-hints/test\nX-Captchaify-Hints: 9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
"User-Agent: captchaify-hints/test\nX-Captchaify-Hints: " . Captchaify::hints_token("localhost", "/p/a.html", time + 60),
"User-Agent: captchaify-hints/test\nX-Captchaify-Hints: " . Captchaify::hints_token("localhost", "/p/a.html", time - 1),
"User-Agent: $::FIREFOX\nX-Captchaify-Hints: " . Captchaify::hints_token("localhost", "/p/a.html", time + 60),
"User-Agent: captchaify-hints/test\nX-Captchaify-Hints: " . Captchaify::hints_token("localhost", "/p/a.html", time + 60),
]
--- error_code eval
[403, 403, 403, 403, 200]
--- response_body_like eval
[$::CAPTCHA, $::CAPTCHA, $::CAPTCHA, $::CAPTCHA, qr/secret/]
