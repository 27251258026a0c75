# With a master and two workers: spent challenges and failures are shared by all workers.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::no_precheck($block);
    # Blocks about the zone's own secret run without a secret file.
    Captchaify::secret_setup($block) unless $block->name =~ /without a secret file/;
    Captchaify::clean_log($block);
});

our $FORM = "Content-Type: application/x-www-form-urlencoded\nUser-Agent: $FIREFOX";
sub answer_form { my ($token, $answer) = @_; "POST /.captchaify/verify\nchallenge=$token&answer=$answer" }

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a challenge is single-use across workers: one 303, then only refusals
--- config
location /p/ { captchaify_action fight; }
--- request eval
my $t = Captchaify::challenge_token(address => "127.0.0.1", ua => $::FIREFOX, answer => "HXMRU4", return => "/p/");
[(::answer_form($t, "HXMRU4")) x 10]
--- more_headers eval
$::FORM
--- error_code eval
[303, (403) x 9]



=== TEST 2: failures add up across workers
--- http_config
captchaify_max_failures 4;
--- config
location /p/ { captchaify_action fight; }
--- request eval
[(map { ::answer_form(Captchaify::challenge_token(address => "127.0.0.1", ua => $::FIREFOX, answer => "HXMRU4"), "NO") } 1 .. 4), "GET /p/"]
--- more_headers eval
$::FORM
--- error_code eval
[403, 403, 403, 403, 403]
--- response_body_like eval
[qr/That was not right/, qr/That was not right/, qr/That was not right/, qr/Too many wrong answers/, qr/Too many wrong answers/]



=== TEST 3: without a secret file, the zone's own secret signs: a pass of another secret fails
--- config
location /p/ { captchaify_action fight; }
--- request eval
[("GET /p/") x 6]
--- more_headers eval
"User-Agent: $::FIREFOX\nCookie: captchaify=" . Captchaify::pass_token(address => "127.0.0.1", ua => $::FIREFOX)
--- error_code eval
[(403) x 6]
--- response_body_like eval
[(qr/name="challenge" value="c2\./) x 6]



=== TEST 4: a picture challenge is single-use across workers too, and its pages are drawn by either
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type animals; }
--- request eval
my $t = Captchaify::challenge_token(address => "127.0.0.1", ua => $::FIREFOX, answer => "2,4,6,8", hardness => "a2", return => "/p/");
[(map { "POST /.captchaify/verify\nchallenge=$t&tile=2&tile=4&tile=6&tile=8&lang=en" } 1 .. 6), ("GET /p/") x 4]
--- more_headers eval
$::FORM
--- error_code eval
[303, (403) x 9]
--- response_body_like eval
[qr/Continue/, (qr/expired or was already used/) x 5, (qr/Select every picture that shows/) x 4]
