package Captchaify;
# Mints captchaify tokens in Perl, from the format documented in docs/design.md ("Tokens"), so
# that the suites test the module against an independent implementation of it.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256 sha256);
use MIME::Base64 qw(encode_base64url);
use Exporter 'import';

our @EXPORT = qw(pass_token challenge_token precheck_token b64 flip_byte $SECRET $FIREFOX $CHROME
                 secret_setup);

# The secret every suite writes to html/secret.key (one trailing newline is not part of it).
our $SECRET = "captchaify-test-secret-0123456789abcdef-0123";
our $FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
our $CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

sub b64 { my $s = encode_base64url($_[0]); $s =~ s/=+$//; $s }

sub client_binding {
    my ($address, $user_agent) = @_;
    return substr(sha256("captchaify-client|$address|$user_agent"), 0, 12);
}

# pass_token(address => ..., ua => ..., hardness => 2, expires => time + 3600, id => 16 bytes)
sub pass_token {
    my %a = (hardness => 2, expires => time + 3600, id => "\x07" x 16, secret => $SECRET, @_);
    my $body = join '.', 'v1', $a{expires}, $a{hardness}, b64($a{id}),
        b64(client_binding($a{address}, $a{ua}));
    return "$body." . b64(hmac_sha256("captchaify-pass|$body", $a{secret}));
}

# challenge_token(address => ..., ua => ..., answer => 'KXMPW4', return => '/p', ...); the
# protected location's budget: prefix => 64, rate => '120m', audio => '6m' (or 'off'),
# location => 16 bytes.
sub challenge_token {
    my %a = (hardness => 2, age => 3600, delivery => 'c', expires => time + 120,
             nonce => join('', map { chr int rand 256 } 1 .. 16), secret => $SECRET,
             return => '/', prefix => 64, rate => '120m', audio => '6m',
             location => "\0" x 16, @_);
    my $nonce = b64($a{nonce});
    my $commitment = substr(hmac_sha256("captchaify-answer|$nonce|$a{answer}", $a{secret}), 0, 16);
    my $body = join '.', 'c2', $a{expires}, $a{hardness}, $a{age}, $a{delivery},
        $a{prefix}, $a{rate}, $a{audio}, b64($a{location}), $nonce,
        b64(client_binding($a{address}, $a{ua})), b64($commitment), b64($a{return});
    return "$body." . b64(hmac_sha256("captchaify-challenge|$body", $a{secret}));
}

# precheck_token(address => ..., ua => ..., path => '/p', expires => time + 300): the proof
# the pre-check hands out, `p1.<expires>.<mac>`.
sub precheck_token {
    my %a = (expires => time + 300, secret => $SECRET, path => '/', @_);
    my $message = join '', map { pack('V', length $_) . $_ }
        client_binding($a{address}, $a{ua}), $a{path}, "$a{expires}";
    return "p1.$a{expires}." . b64(hmac_sha256("captchaify-precheck|$message", $a{secret}));
}

# hints_token($host, $uri, $expires): the module's own crawler-hints fetch token.
sub hints_token {
    my ($host, $uri, $expires, $secret) = (@_, $SECRET);
    my $message = join '', map { pack('V', length $_) . $_ } $host, $uri, "$expires";
    return "$expires." . b64(hmac_sha256("captchaify-hints|$message", $secret));
}

# The token with the byte at $index changed to another token character.
sub flip_byte {
    my ($token, $index) = @_;
    my $c = substr($token, $index, 1);
    substr($token, $index, 1) = $c eq 'A' ? 'B' : 'A';
    return $token;
}

# An add_block_preprocessor hook: every block gets the secret file and the directive using it.
sub secret_setup {
    my $block = shift;
    my $files = $block->user_files // '';
    $block->set_value("user_files", ">>> secret.key\n$SECRET\n$files");
    my $http = $block->http_config // '';
    $block->set_value("http_config", "captchaify_secret_file html/secret.key;\n$http");
}

# An add_block_preprocessor hook for suites about what comes after the pre-check (the captcha
# itself, the rate limits, ...): the pre-check is off unless the block says otherwise
# (t/021-precheck.t tests it, and the e2e suites go through it). Blocks where the module does
# not act (no captchaify_action) are left as they are: a setting there would draw nginx's
# warning that it does nothing.
sub no_precheck {
    my $block = shift;
    my $config = join "\n", grep { defined } $block->config, $block->http_config;
    return if $config =~ /captchaify_precheck/ || $config !~ /(?<!\$)captchaify_action\s/;
    $block->set_value("http_config", "captchaify_precheck off;\n" . ($block->http_config // ''));
}

# An add_block_preprocessor hook: every block also asserts that nginx logged nothing
# alarming. A fail-open response path shows up as "[alert] header already sent", a crashed
# worker as "[alert] ... exited on signal".
sub clean_log {
    my $block = shift;
    my $seen = $block->no_error_log;
    $block->set_value("no_error_log", join "\n", grep { defined && length }
        ($seen ? ($seen =~ s/\n+\z//r) : undef), "[alert]", "[crit]", "[emerg]");
}

1;
