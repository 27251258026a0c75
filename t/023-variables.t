# Rules through nginx variables: captchaify_action, captchaify_hardness and
# captchaify_captcha_type take a variable (map, geo, a header, ...), read per request; a bad
# value is logged and replaced by the strictest (block for suspicious clients and the captcha
# for everyone else without a pass; hardness 3; text), never by let.
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
our $CURL = "curl/8.5.0";
our $BLOCK_PAGE = qr{(?s)\A<!DOCTYPE html>.*<h1 class="danger">Access denied</h1>.*</html>\n\z};
# A text captcha page of hardness H; a picture page (emoji) of hardness H.
sub text_page {
    my $h = shift;
    qr{(?s)\A(?!.*name="tile")<!DOCTYPE html>.*<h1>Verification required</h1>.*<img class="captcha" src="data:image/png;base64,[A-Za-z0-9+/=]+".*name="challenge" value="c2\.\d+\.$h\.3600\.c\..*</html>\n\z}
}
sub picture_page {
    my ($kind, $h) = @_;
    qr{(?s)\A(?!.*<img class="captcha")<!DOCTYPE html>.*<h1>Verification required</h1>.*name="challenge" value="c2\.\d+\.$kind$h\.3600\.c\..*<input type="checkbox" name="tile" value="\d+">.*</html>\n\z}
}
our $WARNING = qr/captchaify: "captchaify_\w+" is (?:"(?:[^"\\]|\\.)*"|empty) from its variable, expected [^;]+; using "\w+"(?: \(\d+ more bad values since the last warning, not logged\))?/;

repeat_each(1);
no_shuffle();
no_root_location();
run_tests();

__DATA__

=== TEST 1: the issue's example, as written: a map on the user agent blocks curl, and captcha lets a person through and challenges a bot
--- http_config
map $http_user_agent $act { ~*curl block; default captcha; }
--- config
location / { captchaify_action $act; }
--- user_files
>>> index.html
the content
--- request eval
["GET /", "GET /", "GET /"]
--- more_headers eval
["User-Agent: $::CURL", "User-Agent: $::FIREFOX", "User-Agent: python-requests/2.31.0"]
--- error_code eval
[403, 200, 403]
--- response_body_like eval
[$::BLOCK_PAGE, qr/\Athe content\n\z/, ::text_page(2)]
--- no_error_log
from its variable



=== TEST 2: $captchaify_action shows the action read for this request
--- http_config
map $http_user_agent $act { ~*curl block; default fight; }
--- config
location / { captchaify_action $act; add_header X-Action $captchaify_action always; }
--- request eval
["GET /", "GET /"]
--- more_headers eval
["User-Agent: $::CURL", "User-Agent: $::FIREFOX"]
--- error_code eval
[403, 403]
--- response_headers eval
["X-Action: block", "X-Action: fight"]
--- response_body_like eval
[$::BLOCK_PAGE, ::text_page(2)]



=== TEST 3: the hardness from a variable: the page is of the hardness asked for
--- http_config
map $arg_level $hardness { easy 1; hard 3; default 2; }
--- config
location /p/ { captchaify_action fight; captchaify_hardness $hardness; }
--- request eval
["GET /p/?level=easy", "GET /p/", "GET /p/?level=hard"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 403]
--- response_body_like eval
[::text_page(1), ::text_page(2), ::text_page(3)]



=== TEST 4: the hardness from a variable decides which passes open the location
--- http_config
map $arg_level $hardness { hard 3; default 1; }
--- config
location /p/ { captchaify_action fight; captchaify_hardness $hardness; }
--- user_files
>>> p/a.txt
protected
--- request eval
["GET /p/a.txt", "GET /p/a.txt?level=hard"]
--- more_headers eval
"User-Agent: $::FIREFOX\nCookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 1)
--- error_code eval
[200, 403]
--- response_body_like eval
[qr/\Aprotected\n\z/, ::text_page(3)]



=== TEST 5: the captcha type from a variable: text, emoji or animals per request
--- http_config
map $arg_kind $kind { e emoji; a animals; default text; }
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type $kind; }
--- request eval
["GET /p/", "GET /p/?kind=e", "GET /p/?kind=a"]
--- more_headers eval
"User-Agent: $::FIREFOX"
--- error_code eval
[403, 403, 403]
--- response_body_like eval
[::text_page(2), ::picture_page("e", 2), ::picture_page("a", 2)]



=== TEST 6: the captcha type and the hardness from variables together
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type $http_x_kind; captchaify_hardness $http_x_level; }
--- request eval
["GET /p/", "GET /p/"]
--- more_headers eval
["User-Agent: $::FIREFOX\nX-Kind: emoji\nX-Level: 1", "User-Agent: $::FIREFOX\nX-Kind: text\nX-Level: 3"]
--- error_code eval
[403, 403]
--- response_body_like eval
[::picture_page("e", 1), ::text_page(3)]



=== TEST 7: an invalid action from a variable is block, never let: curl is blocked, and the operator is warned
--- config
location /p/ { captchaify_action $http_x_action; }
--- user_files
>>> p/a.txt
protected
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::CURL\nX-Action: Let"
--- error_code: 403
--- response_body_like eval
$::BLOCK_PAGE
--- error_log eval
[qr/\[warn\] .*captchaify: "captchaify_action" is "Let" from its variable, expected let, block, fight or captcha; using "block"/,
 qr/captchaify: block \(crawler user agent\) \(action "block"\)/]



=== TEST 8: a bad action blocks the suspicious and challenges everyone else without a pass: a person gets the captcha (with a pass it gets in: TEST 12)
--- config
location /p/ { captchaify_action $http_x_action; }
--- user_files
>>> p/a.txt
protected
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::FIREFOX\nX-Action: allow"
--- error_code: 403
--- response_body_like eval
::text_page(2)
--- error_log eval
qr/\[warn\] .*captchaify: "captchaify_action" is "allow" from its variable[^\n]*using "block"/



=== TEST 9: an empty variable (the header missing) is invalid too: block, and a warning that it is empty
--- config
location /p/ { captchaify_action $http_x_action; }
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::CURL"
--- error_code: 403
--- response_body_like eval
$::BLOCK_PAGE
--- error_log eval
qr/\[warn\] .*captchaify: "captchaify_action" is empty from its variable, expected let, block, fight or captcha; using "block"/



=== TEST 10: an invalid hardness is 3, an invalid captcha type is text, each with its warning
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type $http_x_kind; captchaify_hardness $http_x_level; }
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX\nX-Kind: gif\nX-Level: 0"
--- error_code: 403
--- response_body_like eval
::text_page(3)
--- error_log eval
[qr/\[warn\] .*captchaify: "captchaify_hardness" is "0" from its variable, expected 1, 2 or 3; using "3"/,
 qr/\[warn\] .*captchaify: "captchaify_captcha_type" is "gif" from its variable, expected text, emoji or animals; using "text"/]



=== TEST 11: a value from a client is escaped and cut in the log
--- config
location /p/ { captchaify_action $http_x_action; }
--- request
GET /p/
--- more_headers eval
"User-Agent: $::CURL\nX-Action: \"let\\\xff" . ("x" x 200)
--- error_code: 403
--- error_log eval
qr/\[warn\] .*captchaify: "captchaify_action" is "\\"let\\\\\\xffx{58}\.\.\." from its variable/



=== TEST 12: a bad value read over and over (here four times in one request, through three internal redirects) is logged once; a client with a pass gets in
--- config
location /p/ { captchaify_action $http_x_action; try_files /none /q/; }
location /q/ { captchaify_action $http_x_action; try_files /none /r/; }
location /r/ { captchaify_action $http_x_action; }
--- user_files
>>> r/index.html
the end
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX\nX-Action: again\nCookie: captchaify=" . Captchaify::pass_token(address => $::LOCAL, ua => $::FIREFOX, hardness => 2)
--- error_code: 200
--- response_body
the end
--- grep_error_log eval
$::WARNING
--- grep_error_log_out eval
qr/\Acaptchaify: "captchaify_action" is "again" from its variable, expected let, block, fight or captcha; using "block"\n\z/



=== TEST 13: geo drives the action by address: let for one range, fight for another
--- http_config
geo $lan_act { default fight; 127.0.0.0/8 let; }
geo $wan_act { default let; 127.0.0.0/8 fight; }
--- config
location /lan/ { captchaify_action $lan_act; }
location /wan/ { captchaify_action $wan_act; }
--- user_files
>>> lan/a.txt
inside
--- request eval
["GET /lan/a.txt", "GET /wan/a.txt"]
--- more_headers eval
"User-Agent: $::CURL"
--- error_code eval
[200, 403]
--- response_body_like eval
[qr/\Ainside\n\z/, ::text_page(2)]



=== TEST 14: a variable set at the server level is inherited, and a location's own value replaces it
--- http_config
map $http_user_agent $act { ~*curl block; default captcha; }
--- config
captchaify_action $act;
captchaify_hardness $http_x_level;
location /a/ { }
location /b/ { captchaify_action let; }
location /c/ { captchaify_action fight; captchaify_hardness 1; }
--- user_files
>>> b/a.txt
open
--- request eval
["GET /a/a.txt", "GET /b/a.txt", "GET /c/", "GET /a/"]
--- more_headers eval
["User-Agent: $::CURL", "User-Agent: $::CURL", "User-Agent: $::FIREFOX\nX-Level: 3", "User-Agent: python-requests/2.31.0\nX-Level: 3"]
--- error_code eval
[403, 200, 403, 403]
--- response_body_like eval
[$::BLOCK_PAGE, qr/\Aopen\n\z/, ::text_page(1), ::text_page(3)]



=== TEST 15: a variable set in the http block is inherited by every server and location
--- http_config
captchaify_action $http_x_action;
--- config
location /p/ { }
--- user_files
>>> p/a.txt
protected
--- request eval
["GET /p/a.txt", "GET /p/a.txt"]
--- more_headers eval
["User-Agent: $::CURL\nX-Action: let", "User-Agent: $::CURL\nX-Action: captcha"]
--- error_code eval
[200, 403]
--- response_body_like eval
[qr/\Aprotected\n\z/, ::text_page(2)]



=== TEST 16: dry run follows the action read per request
--- http_config
map $http_user_agent $act { ~*curl block; default captcha; }
--- config
location /p/ { captchaify_action $act; captchaify_dry_run on; }
--- user_files
>>> p/a.txt
protected
--- request
GET /p/a.txt
--- more_headers eval
"User-Agent: $::CURL"
--- error_code: 200
--- error_log
captchaify: dry run, would block (crawler user agent) the client (action "block")



=== TEST 17: an internal redirect to a location with another variable action is decided again, by its own variable
--- config
location /outer/ { captchaify_action $http_x_outer; try_files /none /inner/; }
location /inner/ { captchaify_action $http_x_inner; }
--- request
GET /outer/
--- more_headers eval
"User-Agent: $::CURL\nX-Outer: let\nX-Inner: block"
--- error_code: 403
--- response_body_like eval
$::BLOCK_PAGE
--- error_log
captchaify: block (crawler user agent) (action "block")



=== TEST 18: settings beside a variable action or captcha type reach it: no "does nothing" warning at nginx -t
--- config eval
"location /p/ { captchaify_action \$http_x_action; captchaify_hardness 3; captchaify_block_crawler off;
                captchaify_captcha_type \$http_x_kind; captchaify_picture_dir $ENV{PWD}/pictures/emoji; }"
--- request
GET /p/
--- more_headers eval
"User-Agent: $::FIREFOX\nX-Action: fight\nX-Kind: emoji"
--- error_code: 403
--- response_body_like eval
::picture_page("e", 3)
--- no_error_log
reaches no location



=== TEST 19: a malformed variable fails nginx -t, naming the directive, file and line
--- config
location /p/ { captchaify_action $; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_action" directive: invalid value "\$" \(a malformed variable\) in \S+nginx\.conf:\d+/



=== TEST 20: a malformed variable in the hardness or the captcha type fails too
--- config
location /p/ { captchaify_action fight; captchaify_hardness ${level; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_hardness" directive: invalid value "\$\{level" \(a malformed variable\) in \S+nginx\.conf:\d+/



=== TEST 21: a malformed captcha type variable
--- config
location /p/ { captchaify_action fight; captchaify_captcha_type "kind$"; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_captcha_type" directive: invalid value "kind\$" \(a malformed variable\) in \S+nginx\.conf:\d+/



=== TEST 22: an unknown variable fails nginx -t (nginx's own check)
--- config
location /p/ { captchaify_action $no_such_variable; }
--- must_die
--- error_log eval
qr/\[emerg\].*unknown "no_such_variable" variable/



=== TEST 23: a static invalid value still fails as before, and a variable counts for the duplicate check
--- config
location /p/ { captchaify_action $http_x_action; captchaify_action block; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_action" directive: is duplicate in \S+nginx\.conf:\d+/



=== TEST 24: a static invalid hardness beside a variable action still fails as before
--- config
location /p/ { captchaify_action $http_x_action; captchaify_hardness 4; }
--- must_die
--- error_log eval
qr/\[emerg\].*"captchaify_hardness" directive: invalid hardness "4", expected 1, 2 or 3 in \S+nginx\.conf:\d+/
