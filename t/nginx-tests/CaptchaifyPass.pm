package CaptchaifyPass;
# For `scripts/nginx-tests --captcha`: makes every request of nginx's own test suite carry a
# captchaify pass, without changing the suite's files. Loaded before the test file with
#   PERL5OPT="-I<this folder> -MCaptchaifyPass" CAPTCHAIFY_PASS=<the pass cookie's value>
# from the suite's folder (its lib/ holds Test::Nginx). It wraps
# - Test::Nginx::http_start, through which http(), http_get(), http_head() and the tests'
#   own http_start() send HTTP/1.x: a `Cookie: captchaify=<pass>` line goes right after the
#   request line of each request in the string, pipelined ones included (see add_cookie). A
#   request without a request line (HTTP/0.9, garbage) goes as is.
# - IO::Socket::INET::syswrite, for the first write of tests' own sockets (see below).
# - Test::Nginx::HTTP2::new_stream (HTTP/2): a `cookie` header (a literal without indexing, so
#   the HPACK dynamic table the tests check is the suite's own) after the tests' headers.
# Clients that write to their own sockets with print (none in the subset) send no pass.
# The pass is bound to the client's address and User-Agent: scripts/nginx-tests obtains it
# from the module as 127.0.0.1 without a User-Agent, as the suite's requests are.
use strict;
use warnings;

my $pass = $ENV{CAPTCHAIFY_PASS};
die "CaptchaifyPass: CAPTCHAIFY_PASS is not set\n" unless defined $pass && length $pass;
my $cookie = "captchaify=$pass";

# The suite's tests `use lib 'lib'` from its folder; the wrapped subs must exist first.
use lib 'lib';
require Test::Nginx;

# add_cookie(REQUEST): REQUEST with the pass after the request line of each request in it: a
# request line at the start, then, past its headers and its body (Content-Length bytes, or
# chunks up to the last and its trailers), the next pipelined one, and so on. It stops at
# anything else (garbage, a body cut short, a request line without a version).
sub add_cookie {
    my ($request) = @_;
    return $request unless defined $request;
    my ($out, $pos) = ('', 0);
    while ($request =~ m{\G([A-Z]+ [^\r\n]* HTTP/1\.[01](\r?\n))}gc) {
        my ($line, $eol) = ($1, $2);
        $out .= "$line" . "Cookie: $cookie$eol";
        $pos = pos($request);
        last unless $request =~ m{\G(.*?\r?\n\r?\n)}gcs;
        my $headers = $1;
        $out .= $headers;
        $pos = pos($request);
        if ($headers =~ /^Transfer-Encoding:\s*chunked\s*$/mi) {
            # Chunks, the last (size 0), trailers and their blank line.
            my $last;
            while ($request =~ m{\G(([0-9a-fA-F]+)[^\r\n]*\r?\n)}gc) {
                my ($size_line, $size) = ($1, hex $2);
                $out .= $size_line;
                $pos = pos($request);
                if ($size == 0) {
                    $request =~ m{\G((?:[^\r\n]+\r?\n)*\r?\n)}gc or last;
                    $out .= $1;
                    $pos = pos($request);
                    $last = 1;
                    last;
                }
                last unless $request =~ m{\G(.{$size}\r?\n)}gcs;
                $out .= $1;
                $pos = pos($request);
            }
            last unless $last;
            pos($request) = $pos;
            next;
        }
        last if $headers =~ /^Transfer-Encoding:/mi;
        my ($length) = $headers =~ /^Content-Length:\s*(\d+)\s*$/mi;
        $length //= 0;
        last if $pos + $length > length $request;
        $out .= substr($request, $pos, $length);
        $pos += $length;
        pos($request) = $pos;
    }
    return $out . substr($request, $pos);
}

{
    no warnings 'redefine';
    my $http_start = \&Test::Nginx::http_start;
    *Test::Nginx::http_start = sub ($;%) {
        my ($request, @rest) = @_;
        return $http_start->(add_cookie($request), @rest);
    };
}

# Tests with their own client socket (proxy_upgrade.t's handshake) write with syswrite: a
# socket's first write that starts with a request line gets the pass too. Later writes (the
# data after an upgrade) go as they are; http_start writes with print, covered above.
{
    no warnings 'redefine';
    require IO::Socket::INET;
    *IO::Socket::INET::syswrite = sub {
        my ($s, $data, @rest) = @_;
        if (!${*$s}{captchaify_pass_written}++ && defined $data && !@rest
            && $data =~ m{\A[A-Z]+ [^\r\n]* HTTP/1\.[01]\r?\n}) {
            my $with = add_cookie($data);
            # The caller counts the bytes of what it gave.
            my $n = IO::Handle::syswrite($s, $with);
            return defined $n && $n == length $with ? length $data : $n;
        }
        return IO::Handle::syswrite($s, $data, @rest);
    };
}

# HTTP/2 only when a test uses it: loading it here would change nothing else.
if (eval { require Test::Nginx::HTTP2; 1 }) {
    no warnings 'redefine';
    my $new_stream = \&Test::Nginx::HTTP2::new_stream;
    *Test::Nginx::HTTP2::new_stream = sub {
        my ($self, $uri, @rest) = @_;
        my %uri = %{$uri // {}};
        # The default headers new_stream sends when a test gives none, in its order and mode.
        my @headers = $uri{headers} ? @{$uri{headers}} : (
            { name => ':method', value => $uri{method} || 'GET' },
            { name => ':scheme', value => $uri{scheme} || 'http' },
            { name => ':path', value => $uri{path} || '/' },
            { name => ':authority', value => $uri{host} || 'localhost' },
            $uri{body} ? { name => 'content-length', value => length($uri{body}) } : (),
        );
        # Mode 3: literal header field without indexing, indexed name (RFC 7541, 6.2.2).
        $uri{headers} = [@headers, { name => 'cookie', value => $cookie, mode => 3 }];
        return $new_stream->($self, \%uri, @rest);
    };
}

1;
