# Hardness 3: the audio captcha beside the text one. Both answers are needed, the audio is
# single-use with its challenge, and audio has its own, stricter per-client budget.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block);
});

our $LOCAL = "127.0.0.1";
our $FORM = "Content-Type: application/x-www-form-urlencoded\nUser-Agent: $FIREFOX";
# Text and digits, as the challenge commits to them at hardness 3.
our $BOTH = "HXMRU4CE3R|40917352861";
sub hard_token { Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 3, answer => $::BOTH, return => "/p/a.txt", @_) }
sub answer_form { my ($token, $text, $digits) = @_; "POST /.captchaify/verify\nchallenge=$token&answer=$text&digits=$digits" }

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a hardness-3 page plays the digits inline, offers them as a download and asks for them
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_headers
Cache-Control: no-store
--- response_headers_like
Content-Security-Policy: .*media-src data:
--- response_body_like eval
qr{(?s)<img class="captcha" src="data:image/png;base64,.*<p id="captchaify-audio-help">.*<audio controls preload="auto" src="data:audio/wav;base64,UklGR[A-Za-z0-9+/=]{4000,}">.*<a class="download" href="/\.captchaify/audio\?challenge=c2\.[A-Za-z0-9_.-]+&amp;lang=en" download="captcha\.wav" type="audio/wav">Download the recording \(WAV sound file\)</a>.*<label for="captchaify-digits">Type the 9–14 digits you hear</label>\s*<input id="captchaify-digits" name="digits" type="text" inputmode="numeric"}



=== TEST 2: below hardness 3 there is no audio
--- config
location /p/ { captchaify_action fight; captchaify_hardness 2; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_unlike
<audio|name="digits"



=== TEST 3: the text right and the digits wrong fails, and so does the reverse
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
[::answer_form(::hard_token(), "HXMRU4CE3R", "40917352860"),
 ::answer_form(::hard_token(), "HXMRU4CE3X", "40917352861"),
 ::answer_form(::hard_token(), "HXMRU4CE3R", ""),
 ::answer_form(::hard_token(), "", "40917352861")]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 403, 403]
--- response_body_like eval
[(qr{(?s)That was not right.*<audio controls}) x 2, qr{Too many wrong answers}, qr{Too many wrong answers}]
--- raw_response_headers_unlike eval
[("Set-Cookie") x 4]



=== TEST 4: both right earns the pass, typed loosely (spaces, small letters, Arabic-Indic digits)
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
[::answer_form(::hard_token(), "hxmr+u4ce3r", "4091+7352-861"),
 ::answer_form(::hard_token(), "HXMRU4CE3R", "%D9%A4%D9%A0%D9%A9%D9%A1%D9%A7%D9%A3%D9%A5%D9%A2%D9%A8%D9%A6%D9%A1")]
--- more_headers eval
$::FORM
--- error_code eval
[303, 303]
--- response_headers_like eval
[("Location: /p/a.txt\nSet-Cookie: captchaify=v1\\.\\d+\\.3\\..*") x 2]



=== TEST 5: the audio is single-use with its challenge: a replay, even right, gets a link to a fresh one, and nothing drawn
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
my $t = ::hard_token();
[::answer_form($t, "HXMRU4CE3R", "40917352861"), ::answer_form($t, "HXMRU4CE3R", "40917352861")]
--- more_headers eval
$::FORM
--- error_code eval
[303, 403]
--- response_body_like eval
[qr{See Other}, qr{(?s)\A(?!.*<audio)(?!.*<img).*already used\.</p><p><a href="/p/a\.txt">Show a new check</a>}]



=== TEST 6: the audio budget (3r/m here) runs out before the page budget, and only for audio
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; captchaify_audio_rate_limit 3r/m; }
location /q/ { captchaify_action fight; captchaify_hardness 2; }
--- pipelined_requests eval
["GET /p/1", "GET /p/2", "GET /p/3", "GET /p/4", "GET /q/5"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 403, 429, 403]
--- response_headers_like eval
["Cache-Control: no-store", "Cache-Control: no-store", "Cache-Control: no-store", "Retry-After: 20\nCache-Control: no-store", "Cache-Control: no-store"]
--- response_body_like eval
[(qr{<audio controls}) x 3, qr{(?s)Too many requests.*<strong>20</strong>}, qr{<img class="captcha"}]



=== TEST 7: by default six audio captchas a minute, while pages allow 120
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
[map { "GET /p/$_" } 1 .. 7]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[(403) x 6, 429]
--- response_headers_like eval
[("Cache-Control: no-store") x 6, "Retry-After: 10"]



=== TEST 8: a wrong answer's new hardness-3 captcha counts against the audio budget too
(the form posts to /.captchaify/verify; the budget is the one of the location that showed the
captcha, carried in the challenge, whatever the module's path says)
--- config
captchaify_audio_rate_limit off;
location /p/ { captchaify_action fight; captchaify_hardness 3; captchaify_audio_rate_limit 1r/m; }
--- pipelined_requests eval
[::answer_form(::hard_token(audio => "1m"), "HXMRU4CE3R", "1"), ::answer_form(::hard_token(audio => "1m"), "HXMRU4CE3R", "2")]
--- more_headers eval
$::FORM
--- error_code eval
[403, 429]
--- response_body_like eval
[qr{That was not right}, qr{Too many requests}]



=== TEST 9: captchaify_audio_rate_limit off lifts the audio budget; bad values fail nginx -t
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; captchaify_audio_rate_limit off; }
--- pipelined_requests eval
[map { "GET /p/$_" } 1 .. 8]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[(403) x 8]



=== TEST 10: a German page speaks and asks in German
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX\nAccept-Language: de"
--- error_code: 403
--- response_body_like eval
qr{(?s)<html lang="de" dir="ltr">.*<audio controls.*<label for="captchaify-digits">[^<]*9–14[^<]*</label>}



=== TEST 11: the clip downloads from the module's path as a WAV file, for its own client only
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- request eval
"GET /.captchaify/audio?challenge=" . ::hard_token() . "&lang=en"
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code: 200
--- response_headers
Content-Type: audio/wav
Content-Disposition: attachment; filename="captcha.wav"
Cache-Control: no-store
X-Content-Type-Options: nosniff
--- response_body_like eval
qr{\ARIFF....WAVEfmt }s



=== TEST 12: no clip for another client, a forged or hardness-2 challenge, an unknown language, or a POST
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
["GET /.captchaify/audio?challenge=" . ::hard_token() . "&lang=en",
 "GET /.captchaify/audio?challenge=" . Captchaify::flip_byte(::hard_token(), 20) . "&lang=en",
 "GET /.captchaify/audio?challenge=" . ::hard_token(hardness => 2) . "&lang=en",
 "GET /.captchaify/audio?challenge=" . ::hard_token() . "&lang=xx",
 "GET /.captchaify/audio?lang=en",
 "POST /.captchaify/audio?challenge=" . ::hard_token() . "&lang=en\nx"]
--- more_headers eval
["User-Agent: curl/8.0", ("User-Agent: $::FIREFOX") x 5]
--- error_code eval
[403, 403, 404, 404, 403, 405]



=== TEST 13: the clip is gone once its challenge is answered, or expired
--- config
location /p/ { captchaify_action fight; captchaify_hardness 3; }
--- pipelined_requests eval
my $t = ::hard_token();
[::answer_form($t, "HXMRU4CE3R", "40917352861"),
 "GET /.captchaify/audio?challenge=$t&lang=en",
 "GET /.captchaify/audio?challenge=" . ::hard_token(expires => time - 1) . "&lang=en"]
--- more_headers eval
$::FORM
--- error_code eval
[303, 410, 410]



=== TEST 14: downloads count against the audio budget of the location that showed the captcha
(carried in the challenge: `off` where the module's path falls lifts nothing)
--- config
captchaify_audio_rate_limit off;
location /p/ { captchaify_action fight; captchaify_hardness 3; captchaify_audio_rate_limit 2r/m; }
--- pipelined_requests eval
my $t = ::hard_token(audio => "2m");
[("GET /.captchaify/audio?challenge=$t&lang=en") x 3]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[200, 200, 429]
