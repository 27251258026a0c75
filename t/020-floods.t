# Floods cost the attacker, not us (issue 16): one pass candidate per request, and none at all
# checked for a client already over its limit.
use lib 't/lib';
use Captchaify;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;
    Captchaify::no_precheck($block);
    Captchaify::secret_setup($block);
    Captchaify::clean_log($block) unless defined $block->must_die;
});

our $LOCAL = "127.0.0.1";
our $PASS = Captchaify::pass_token(address => $LOCAL, ua => $FIREFOX);
# A pass of the right shape, signed with another secret: it costs a check, and fails it.
our $FORGED = Captchaify::pass_token(address => $LOCAL, ua => $FIREFOX, secret => "not-the-secret-not-the-secret-not-the");

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: one pass candidate per request: the first cookie that looks like a pass
(garbage before it is skipped by its shape; a forged pass before a good one hides the good one)
--- config
location /p/ { captchaify_action fight; }
--- request eval
["GET /p/a.txt", "GET /p/a.txt", "GET /p/a.txt"]
--- more_headers eval
["User-Agent: $::FIREFOX\nCookie: captchaify=garbage; captchaify=$::PASS",
 "User-Agent: $::FIREFOX\nCookie: captchaify=$::FORGED; captchaify=$::PASS",
 "User-Agent: $::FIREFOX\nCookie: captchaify=$::PASS; captchaify=$::FORGED"]
--- error_code eval
[404, 403, 404]



=== TEST 2: two hundred forged passes (each in its own Cookie header) cost one check
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX\n" . join("\n", map { "Cookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX, id => pack("N4", $_, 0, 0, 0), secret => "not-the-secret-not-the-secret-not-the") } 1 .. 200)
--- error_code: 403
--- grep_error_log: checking a pass not in this worker's cache
--- grep_error_log_out
checking a pass not in this worker's cache



=== TEST 3: a valid pass within its limit is checked once, and opens the page
--- config
location /p/ { captchaify_action fight; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX\nCookie: captchaify=$::PASS"
--- error_code: 404
--- grep_error_log: checking a pass not in this worker's cache
--- grep_error_log_out
checking a pass not in this worker's cache



=== TEST 4: a client already over its limit is answered before its pass is checked
--- config
location /p/ { captchaify_action fight; captchaify_rate_limit 2r/m; }
--- pipelined_requests eval
["GET /p/a.txt", "GET /p/a.txt", "GET /p/a.txt"]
--- more_headers eval
["User-Agent: $::FIREFOX", "User-Agent: $::FIREFOX", "User-Agent: $::FIREFOX\nCookie: captchaify=$::PASS"]
--- error_code eval
[403, 403, 429]
--- no_error_log
checking a pass not in this worker's cache



=== TEST 5: a wrong answer's fresh captcha is drawn in the thread pool, off the event loop
--- config
location /p/ { captchaify_action fight; }
--- request eval
"POST /.captchaify/verify\nchallenge=" . Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt") . "&answer=WRONG"
--- more_headers eval
"Content-Type: application/x-www-form-urlencoded\nUser-Agent: $::FIREFOX"
--- error_code: 403
--- response_body_like: That was not right
--- error_log
added to thread pool "default"



=== TEST 6: the verify path spends the budget of the page answered: over it, a 429 and nothing drawn
(each answer is either drawn a fresh captcha in the thread pool or refused, never both)
--- http_config
captchaify_max_failures 100;
--- config
location /p/ { captchaify_action fight; captchaify_rate_limit 3r/m; }
--- request eval
[map { "POST /.captchaify/verify\nchallenge=" . Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt", rate => "3m") . "&answer=WRONG" } 1 .. 5]
--- more_headers eval
"Content-Type: application/x-www-form-urlencoded\nUser-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 403, 429, 429]
--- response_body_like eval
[(qr/That was not right/) x 3, (qr{\A(?!.*<img)}s) x 2]
--- grep_error_log eval
qr/added to thread pool "default"|rate-limit \(answers\)/
--- grep_error_log_out eval
qr/\A(?:added to thread pool "default"|rate-limit \(answers\))\n\z/



=== TEST 7: forged and replayed challenges get a short page with a link back, and no image
--- config
location /p/ { captchaify_action fight; }
--- pipelined_requests eval
my $good = Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt");
my $forged = Captchaify::challenge_token(address => $::LOCAL, ua => $::FIREFOX, answer => "HXMRU4", return => "/p/a.txt", secret => "not-the-secret-not-the-secret-not-the");
[map { "POST /.captchaify/verify\nchallenge=$_&answer=HXMRU4" } $forged, "c2.garbage", $good, $good]
--- more_headers eval
"Content-Type: application/x-www-form-urlencoded\nUser-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 303, 403]
--- response_body_like eval
[(qr{\A(?!.*<img)(?!.*http-equiv).{1,1024}\z}s) x 2, qr/See Other/, qr{\A(?!.*<img).*<a href="/p/a\.txt">Show a new check</a>}s]
--- no_error_log
added to thread pool
