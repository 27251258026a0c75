package Test::Nginx::Socket;

# Fallback re-implementation of openresty/test-nginx's Test::Nginx::Socket
# (v0.29), used only when the real module is not installed (see
# t/compat/README.md).  Like the real one it is a Test::Base subclass, so the
# __DATA__ parsing, filters (eval, chomp, ...), ONLY/SKIP/LAST, plan(),
# blocks() and the "no plan" behaviour are Test::Base's own.  This file holds
# the HTTP client (raw socket, HTTP/1.x) and the per-request checks; nginx
# management is in Test::Nginx::Util.
#
# The number of Test::More assertions per section matches the real module,
# so "plan tests => repeat_each() * (blocks() * N)" works with both.

use strict;
use warnings;

# Upstream adds these to @INC for the test files, so do we.
use lib 'lib';
use lib 'inc';

# "-base" (not "-Base") gives the same inheritance and exports as upstream's
# "use Test::Base -Base" without Spiffy's source filter.
use Test::Base -base;

our $VERSION = '0.29';

use Encode ();
use Digest::MD5 ();
use Digest::SHA ();
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw( min );
use POSIX qw( EAGAIN EINTR );
use Time::HiRes qw( sleep );
use Test::LongString;

use Test::Nginx::Util;

# Exactly the export list of the real Test::Nginx::Socket 0.29; Test::Base
# adds its own (plan, blocks, is, like, ok, diag, ...).
our @EXPORT = qw( env_to_nginx is_str plan run_tests run_test
  repeat_each config_preamble worker_connections
  master_process_enabled
  no_long_string workers master_on master_off
  log_level no_shuffle no_root_location use_hup
  server_name
  server_addr server_root html_dir server_port server_port_for_client
  timeout no_nginx_manager check_accum_error_log
  add_block_preprocessor bail_out add_cleanup_handler
  add_response_body_check
);

our @ResponseBodyChecks;
our $TotalConnectingTimeouts = 0;

$RunTestHelper = \&run_test_helper;
$CheckErrorLog = \&check_error_log;

sub set_http_config_filter ($) { $FilterHttpConfig = shift }
sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

# ------------------------------------------------------- building requests

# "--- more_headers" text -> ("Key: val\r\n"..., is_chunked).
sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', 0);
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*\#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val //= '';
        $is_chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# Turns a "--- request" value ("METHOD [URI [VERSION]]\nbody"), given as a
# list of packets, into the packets of a full HTTP request: the request line
# gets the default URI "/" and version HTTP/1.1, then Host, Connection,
# "--- more_headers" and a Content-Length for a (trimmed) body are added, as
# upstream does.  Packet boundaries inside the body are kept.  A boundary
# inside the request line is moved to the end of the headers (upstream keeps
# it there; splitting the request line itself is not supported here).
sub build_request {
    my ($name, $more_headers, $is_chunked, $conn, $packets) = @_;
    my $req = join '', map { $_ // '' } @$packets;

    my ($first) = $req =~ /\A([^\n]*\n?)/;
    bail_out("$name - Request line should be non-empty") if $first eq '';
    $first =~ /^\s*(\S+)( *)(?:(\S+)( *))?(?:(\S+)( *))?\s*$/
        or bail_out("$name - Request line is not valid. Should be 'meth [url [version]]' but got \"$first\".");
    my ($meth, $url, $ver) = ($1, $3 // '/', $5 // 'HTTP/1.1');
    my $body = substr $req, length $first;

    my $len_header = '';
    if (!$is_chunked && $body ne '' && $more_headers !~ /(?:^|\n)Content-Length:/) {
        $body =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($body) . "\r\n";
    }
    $more_headers =~ s/(?<!\r)\n/\r\n/gs;
    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $more_headers !~ /(?:^|\n)Host:/msi;
    $headers .= "Connection: $conn\r\n" if $more_headers !~ /(?:^|\n)Connection/msi;
    my $head = "$meth $url $ver\r\n$headers$more_headers$len_header\r\n";
    my $new  = $head . $body;

    # Cut the new text where the original packets ended (one output packet
    # per input packet, so "delay_before" stays with its packet).
    my ($pos, $prev, @out) = (0, 0);
    for my $i (0 .. $#$packets) {
        $pos += length($packets->[$i] // '');
        my $cut = $i == $#$packets ? length $new
                : $pos <= length $first ? length $head
                : length($head) + $pos - length $first;
        $cut = length $new if $cut > length $new;
        $cut = $prev if $cut < $prev;
        push @out, substr($new, $prev, $cut - $prev);
        $prev = $cut;
    }
    return \@out;
}

# Returns a list of requests, each a list of {value => bytes, delay_before => s}.
sub get_req_from_block ($) {
    my $block = shift;
    my $name  = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        return [[ map { +{ value => $_ } } (ref $raw eq 'ARRAY' ? @$raw : $raw) ]];
    }

    my $request;
    if (defined $block->request_eval) {
        diag "$name - request_eval DEPRECATED. Use request eval instead.";
        $request = eval $block->request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
        # leading blank lines and "# comment" lines are allowed
        if (defined $request && !ref $request) {
            1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        }
    }

    my $more_headers = $block->more_headers || '';
    my $headers_for = sub {
        my $i = shift;
        return parse_more_headers($more_headers) unless ref $more_headers eq 'ARRAY';
        my $h = $more_headers->[$i];
        bail_out("--- more_headers lacks data for the ${i}th request") unless defined $h;
        return parse_more_headers($h);
    };

    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $conn = $i == $#$reqs ? 'close' : 'keep-alive';
            $all .= join '', @{ build_request($name, $headers_for->($i), $conn, [$reqs->[$i]]) };
        }
        return [[{ value => $all }]];
    }

    if (!ref $request) {
        return [[ map { +{ value => $_ } } @{ build_request($name, $headers_for->(0), 'close', [$request]) } ]];
    }
    bail_out("$name - invalid ---request : MUST be string or array of requests")
        unless ref $request eq 'ARRAY';

    my @list;
    for my $i (0 .. $#$request) {
        my $one = $request->[$i];
        my @hdr = $headers_for->($i);
        if (!ref $one) {
            push @list, [ map { +{ value => $_ } } @{ build_request($name, @hdr, 'close', [$one]) } ];
            next;
        }
        bail_out("$name - Invalid syntax. $one should be a string or an array of packets.")
            unless ref $one eq 'ARRAY';
        # Packets: strings or {value => ..., delay_before => seconds}.
        my @vals = map {
            !ref $_ ? $_ : ref $_ eq 'HASH' ? $_->{value}
                : bail_out("$name - Invalid syntax. $_ should be a string or hash with value.")
        } @$one;
        my $built = build_request($name, @hdr, 'close', \@vals);
        my @req;
        for my $j (0 .. $#$built) {
            my $orig = $one->[$j];
            push @req, { (ref $orig eq 'HASH' ? %$orig : ()), value => $built->[$j] };
        }
        push @list, \@req;
    }
    return \@list;
}

# ---------------------------------------------------------- the HTTP client

# Sends one request (a list of packets) over a fresh TCP connection and reads
# until the server closes it.  Returns (raw response, is HEAD request).
sub send_request ($$$$) {
    my ($req, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;
    my @bits = @$req;
    my $head_req = (join('', map { $_->{value} } @bits) =~ /^\s*HEAD\s+/) ? 1 : 0;
    my $addr = $block->server_addr_for_client // $ServerAddr;

    # nginx may still be starting: retry like upstream (about 50 tries).
    my $sock;
    for my $tries (1 .. 50) {
        $sock = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $ServerPortForClient,
                                      Proto => 'tcp', Timeout => $timeout);
        last if $sock;
        my $wait = (sleep_time() + sleep_time() * $tries) * $tries / 2;
        $wait = 1 if $wait > 1;
        warn "$name - Can't connect to $addr:$ServerPortForClient: $!\n" if $wait >= 0.6;
        sleep $wait;
    }
    if (!$sock) {
        my $msg = "$name - Can't connect to $addr:$ServerPortForClient: $! (aborted)\n";
        bail_out($msg) if ++$TotalConnectingTimeouts >= 3;
        Test::More->builder->no_ending(1);
        fail($msg);
        return (undef, $head_req);
    }
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';   # nginx may close while we still write

    my ($resp, $wbuf, $woff) = ('', (shift @bits)->{value}, 0);
    my ($reading, $writing) = (1, 1);
    while ($reading || $writing) {
        my $rsel = IO::Select->new; $rsel->add($sock) if $reading;
        my $wsel = IO::Select->new; $wsel->add($sock) if $writing;
        $! = 0;
        my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $timeout);
        if (!$r && !$w) {
            next if $! == EINTR;
            # Timed out: a failure unless "--- abort" says it is expected.
            if (!defined $block->abort) {
                Test::More->builder->no_ending(1);
                fail("ERROR: client socket timed out - $name\n");
            }
            last;
        }
        if ($r && @$r) {
            while (1) {
                my $n = sysread $sock, my $buf, 1024;
                if (!defined $n) {
                    last if $! == EAGAIN;
                    warn "WARNING: $name - HTTP response read failure: $!";
                }
                if (!$n) { ($reading, $writing) = (0, 0); last }   # EOF or error
                $resp .= $buf;
            }
        }
        if ($writing && $w && @$w) {
            while (1) {
                if ($woff < length $wbuf) {
                    my $n = syswrite $sock, $wbuf, length($wbuf) - $woff, $woff;
                    if (!defined $n) {
                        last if $! == EAGAIN;
                        warn "write failed: $!\n";
                        $resp = "write failed: $!" if $resp eq '';
                        ($reading, $writing) = (0, 0);
                        last;
                    }
                    $woff += $n;
                    next;
                }
                my $next = shift @bits;
                if (!$next) {
                    $writing = 0;
                    if (defined(my $how = $block->shutdown)) {
                        shutdown $sock, ($how =~ /^\s*$/ ? 1 : $how);
                    }
                    last;
                }
                my $delay = $next->{delay_before} // $middle_delay;
                sleep $delay if $delay;
                ($wbuf, $woff) = ($next->{value}, 0);
            }
        }
    }
    close $sock;
    return ($resp, $head_req);
}

# Parses one response off the front of $raw.  Returns (HTTP::Response,
# raw header text, left-over bytes for pipelined responses).
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;
    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res  = HTTP::Response->parse($raw);
    my $code = $res->code;
    if ($code && $code !~ /^\d+$/) { undef $code; $res->code(undef) }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my $left;
    if (defined $enc && $enc eq 'chunked') {
        my $body = $res->content // '';
        my $decoded = '';
        while (1) {
            if ($body =~ /\G 0 [\ \t]* \r\n \r\n /gcx) {
                $left = $1 if $body =~ /\G (.+) /gcsx;
                last;
            }
            if ($body =~ /\G [\ \t]* ([A-Fa-f0-9]+) [\ \t]* \r\n /gcx) {
                my $size = hex $1;
                my $pos  = pos $body;
                if (length($body) - $pos < $size) {
                    Test::More->builder->no_ending(1);
                    fail("$name - invalid chunked data received (not enought octets for the data section)");
                    return;
                }
                $decoded .= substr $body, $pos, $size;
                pos($body) = $pos + $size;
                if ($body !~ /\G\r\n/gc) {
                    Test::More->builder->no_ending(1);
                    fail("$name - invalid chunked data received (expected CRLF).");
                    return;
                }
            } elsif ($body =~ /\G.+/gcs) {
                Test::More->builder->no_ending(1);
                fail("$name - invalid chunked body received: $&");
                return;
            } else {
                Test::More->builder->no_ending(1);
                fail("$name - no last chunk found - $body");
                return;
            }
        }
        $res->content($decoded);
    } elsif (defined $len && $len ne '' && $len >= 0) {
        my $body = $res->content;
        if (length $body < $len) {
            # HEAD responses carry Content-Length but no body
            warn "WARNING: $name - response body truncated: $len expected, but got ",
                 length $body, "\n" unless $head_req;
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }
    return ($res, $raw_headers, $left);
}

# ------------------------------------------------------------ the checks

# With several requests in a block every expectation must be an array
# (one element per request); with one request an array's first element is used.
sub get_indexed_value ($$$$) {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results should be arrays as well.");
    }
    if (ref $value eq 'ARRAY') {
        bail_out("$name - SHOULD NOT HAPPEN: idx != 0 and don't need array.") if $idx;
        return $value->[0];
    }
    return $value;
}

# Per request, once per repeat_each round.
sub run_test_helper ($$$) {
    my ($block, $dry_run, $repeated_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time($block->timeout) // timeout();
    my ($res, $n, $need_array);
    my $req_idx = 0;

    for my $one_req (@$reqs) {
        my ($raw, $head_req) = $dry_run
            ? ("200 OK HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 0)
            : send_request($one_req, $block->raw_request_middle_delay, $timeout, $block);

        if ($block->pipelined_requests) {
            $n = @{ $block->pipelined_requests };
            $need_array = 1;
        } else {
            $need_array = @$reqs > 1;
        }

        # Pipelined responses arrive on one connection: parse them one by one.
        while (1) {
            $raw //= '';
            my ($raw_headers, $left);
            if (!defined $block->ignore_response) {
                if (defined $block->http09) {
                    ($res, $raw_headers) = (HTTP::Response->new(200, 'OK', [], $raw), '');
                } else {
                    ($res, $raw_headers, $left) = parse_response($name, $raw, $head_req);
                }
            }
            if (!$n) {
                if ($left) {
                    $left =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last chunk in ",
                         "response: \"$left\"\n";
                }
            } else {
                $raw = $left;
                $n--;
            }

            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $dry_run, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $dry_run, $req_idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $dry_run, $req_idx, $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $dry_run, $req_idx, $repeated_idx, $need_array);
            }

            # Logs are checked after every request but the last here, and
            # once more after the last one below (upstream does the same).
            if ($n || $req_idx < @$reqs - 1) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $dry_run, $repeated_idx, $need_array);
                check_access_log($block, $dry_run, $repeated_idx)
                    unless defined $block->ignore_response;
            }
            $req_idx++;
            last unless $n;
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $res, $dry_run, $repeated_idx, $need_array);
    check_access_log($block, $dry_run, $repeated_idx) unless defined $block->ignore_response;
}

# Always exactly 1 assertion per request (expects 200 by default).
sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';
    SKIP: {
        skip "$name - tests skipped due to $dry_run", 1 if $dry_run;
        if (defined $block->error_code_like) {
            my $val = get_indexed_value($name, $block->error_code_like, $idx, $need_array);
            like($code, qr/$val/sm, "$name - status code ok");
        } elsif (defined $block->error_code) {
            is($code, get_indexed_value($name, $block->error_code, $idx, $need_array),
               "$name - status code ok");
        } else {
            is($code, 200, "$name - status code ok");
        }
    }
}

# 1 assertion each for raw_response_headers_like / _unlike.
sub check_raw_response_headers ($$$$$) {
    my ($block, $raw_headers, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    for my $kind (qw( like unlike )) {
        my $section = "raw_response_headers_$kind";
        my $spec = $block->$section;
        next unless defined $spec;
        SKIP: {
            skip "$name - raw_response_headers_$kind - tests skipped due to $dry_run", 1 if $dry_run;
            my $expected = get_indexed_value($name, $spec, $idx, $need_array);
            $kind eq 'like'
                ? like($raw_headers, qr/$expected/s, "$name - raw resp headers like")
                : unlike($raw_headers, qr/$expected/s, "$name - raw resp headers unlike");
        }
    }
}

# 1 assertion per distinct header name in response_headers ("!Name" = must
# be absent); response_headers_like only when response_headers is absent.
sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw_headers, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->response_headers) {
        my $headers = parse_headers(get_indexed_value($name, $block->response_headers,
                                                      $idx, $need_array));
        while (my ($key, $val) = each %$headers) {
            if (!defined $val) {
                SKIP: {
                    skip "$name - response_headers - tests skipped due to $dry_run", 1 if $dry_run;
                    unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                           "$name - header $key not present in the raw headers");
                }
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            my $actual = ($res ? $res->header($key) : undef) // '';
            SKIP: {
                skip "$name - response_headers - tests skipped due to $dry_run", 1 if $dry_run;
                is($actual, $val, "$name - header $key ok");
            }
        }
    } elsif (defined $block->response_headers_like) {
        my $headers = parse_headers(get_indexed_value($name, $block->response_headers_like,
                                                      $idx, $need_array));
        while (my ($key, $val) = each %$headers) {
            my $actual = ($res ? $res->header($key) : undef) // '';
            SKIP: {
                skip "$name - response_headers_like - tests skipped due to $dry_run", 1 if $dry_run;
                like($actual, qr/^$val$/, "$name - header $key like ok");
            }
        }
    }
}

my %BodyFilters = (
    md5_hex  => \&Digest::MD5::md5_hex, sha1_hex => \&Digest::SHA::sha1_hex,
    uc => sub { uc $_[0] }, lc => sub { lc $_[0] },
    ucfirst => sub { ucfirst $_[0] }, lcfirst => sub { lcfirst $_[0] },
    length => sub { length $_[0] },
);

# "--- response_body_filters": names above or code refs, applied to the
# actual body before it is compared.
sub transform_response_body ($$$) {
    my ($block, $res, $idx) = @_;
    my $filters = $block->response_body_filters;
    return unless defined $res && defined $res->content && defined $filters;
    my $name = $block->name;
    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    if (ref $filters->[0] eq 'ARRAY') {   # one filter list per request
        $filters = $filters->[$idx];
        bail_out("$name - the ---response_body_filters two-dimensional array "
                 . "unmatch the specified request($idx)") unless defined $filters;
    }
    my $content = $res->content;
    for my $f (ref $filters eq 'ARRAY' ? @$filters : $filters) {
        my $code = ref $f eq 'CODE' ? $f : !ref $f ? $BodyFilters{$f} : undef;
        bail_out("$name - unknown filter, \"$f\", specified in the --- response_body_filters section")
            unless $code;
        $content = $code->($content);
    }
    $res->content($content);
}

# 1 assertion: response_body (exact, or like() for a qr// from eval), else
# response_body_like, else response_body_unlike.
sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $idx, $repeated_idx, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->content : undef;
    if (defined $content) {
        $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gms;
        $content =~ s/^Connection: TE, close\r\n//gms;
    }

    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if ($block->response_body_eval) {
            diag "$name - response_body_eval is DEPRECATED. Use response_body eval instead.";
            $expected = eval get_indexed_value($name, $block->response_body_eval, $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body, $idx, $need_array);
        }
        Encode::from_to($expected, 'UTF-8', $block->charset) if $block->charset;
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }
        my $desc = "$name - response_body - response is expected (repeated req $repeated_idx, req $idx)";
        SKIP: {
            skip "$name - response_body - tests skipped due to $dry_run", 1 if $dry_run;
            if (ref $expected) {
                like($content, $expected, "$name - response_body - like (repeated req $repeated_idx, req $idx)");
            } elsif ($NoLongString) {
                is($content, $expected, $desc);
            } else {
                is_string($content, $expected, $desc);
            }
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $section = "response_body_$type";
        my $pat = get_indexed_value($name, $block->$section, $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = trim($content) // '';
        SKIP: {
            skip "$name - response_body_$type - tests skipped due to $dry_run", 1 if $dry_run;
            my $desc = "$name - response_body_$type - response is expected ($summary)";
            $type eq 'like' ? like($content, qr/$pat/s, $desc) : unlike($content, qr/$pat/s, $desc);
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $res ? $res->content : undef, $idx, $repeated_idx, $dry_run);
    }
}

sub fmt_str ($) {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g; $str =~ s/\r/\\r/g; $str =~ s/\n/\\n/g;
    return $str;
}

# A section value as a list of patterns: text is split into non-empty lines
# (each a substring), eval may give a qr// or an array of strings/qr//.
sub _patterns ($) {
    my $pats = shift;
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats] if ref $pats;
    chomp $pats;
    return [split /\n+/, $pats];
}

sub _matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;
}

# "--- error_log"/"--- access_log": 1 assertion per pattern (pass when some
# line matches).  "--- no_error_log"/"--- no_access_log": 1 failing
# assertion per (pattern, matching line), 1 passing assertion per pattern
# matching nothing -- so the count only matches the plan when the test passes.
sub _check_log_patterns ($$$$$$) {
    my ($block, $kind, $file, $get_lines, $dry_run, $repeated_idx) = @_;
    my $name = $block->name;
    my $no_kind = "no_$kind";

    if (defined(my $spec = $block->$kind)) {
        my $pats = _patterns($spec);
        my $lines = $get_lines->();
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless defined $pat && _matches($line, $pat);
                SKIP: {
                    skip "$name - $kind - tests skipped due to $dry_run", 1 if $dry_run;
                    pass("$name - pattern \"$pat\" matches a line in $file (req $repeated_idx)");
                }
                undef $pat;
            }
        }
        for my $pat (grep { defined } @$pats) {
            SKIP: {
                skip "$name - $kind - tests skipped due to $dry_run", 1 if $dry_run;
                fail("$name - pattern \"$pat\" should match a line in $file (req $repeated_idx)");
            }
        }
    }

    if (defined(my $spec = $block->$no_kind)) {
        my $pats = _patterns($spec);
        my %found;
        my $lines = $get_lines->();
        for my $i (0 .. $#$lines) {
            my $line = $lines->[$i];
            for my $pat (@$pats) {
                next unless defined $pat && _matches($line, $pat);
                Test::More->builder->no_ending(1) if $found{$pat}++;
                SKIP: {
                    skip "$name - $no_kind - tests skipped due to $dry_run ($line)", 1 if $dry_run;
                    my @more = @$lines[$i + 1 .. min($i + 10, @$lines - 1) - 1];
                    fail("$name - pattern \"" . fmt_str($pat) . "\" should not match any line in "
                         . "$file but matches line \"" . fmt_str($line) . "\" (req $repeated_idx)\n"
                         . join '', @more);
                }
            }
        }
        for my $pat (grep { defined && !$found{$_} } @$pats) {
            SKIP: {
                skip "$name - $no_kind - tests skipped due to $dry_run", 1 if $dry_run;
                pass("$name - pattern \"" . fmt_str($pat) . "\" does not match a line in $file (req $repeated_idx)");
            }
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $repeated_idx) = @_;
    my $lines;
    _check_log_patterns($block, 'access_log', 'access.log',
                        sub { $lines ||= access_log_data() }, $dry_run, $repeated_idx);
}

# Does a section value (string or array of them) mention $pat?
sub _mentions {
    my ($val, $pat) = @_;
    return scalar grep { _mentions($_, $pat) } @$val if ref $val eq 'ARRAY';
    return $val =~ /\Q$pat\E/;
}

# Reads the error.log lines written since the previous check (once per call,
# even with no log sections, like upstream: this advances the position).
sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $repeated_idx, $need_array) = @_;
    my $name = $block->name;
    my $lines;
    my $get = sub { $lines ||= error_log_data() // [] };

    # grep_error_log / grep_error_log_out: 1 assertion.
    my $grep_pat = $block->grep_error_log;
    $grep_pat = $grep_pat->[$repeated_idx] if ref $grep_pat eq 'ARRAY';
    if (!defined $grep_pat && defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- grep_error_log_out is defined");
    }
    if (defined $grep_pat) {
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined")
            unless defined $expected;
        $expected = $expected->[$repeated_idx] if ref $expected eq 'ARRAY';
        SKIP: {
            skip "$name - error_log - tests skipped due to $dry_run", 1 if $dry_run;
            my $matched = '';
            for my $line (@{ $get->() }) {
                if (ref $grep_pat ? $line =~ /$grep_pat/ : $line =~ /\Q$grep_pat\E/) {
                    $matched .= "$&\n" if $& !~ /\n/;
                }
            }
            my $desc = "$name - grep_error_log_out (req $repeated_idx)";
            if (ref $expected eq 'Regexp') { like($matched, $expected, $desc) }
            elsif ($NoLongString)          { is($matched, $expected, $desc) }
            else                           { is_string($matched, $expected, $desc) }
        }
    }

    _check_log_patterns($block, 'error_log', 'error.log', $get, $dry_run, $repeated_idx);

    return if $dry_run;
    # Not assertions, just warnings (unless a section mentions the level).
    my $lines_now = $get->();
    for my $level (qw( alert crit emerg )) {
        next if grep { defined $_ && _mentions($_, "[$level") }
                     $block->error_log, $block->no_error_log;
        warn "WARNING: $name - ", fmt_str($_), "\n" for grep { /\[$level\]/ } @$lines_now;
    }
    # A failed C assertion in the log is always a failure.
    for my $line (@$lines_now) {
        next unless $line =~ /\bAssertion .*?failed\b/;
        Test::More->builder->no_ending(1);
        chomp(my $l = $line);
        fail("$name - $l\n");
    }
}


1;
