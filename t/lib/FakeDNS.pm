package FakeDNS;
# A tiny authoritative DNS server over UDP for the tests: answers A, AAAA and PTR questions
# from a table, NXDOMAIN for names it does not know, and nothing at all (a time-out) for names
# listed as silent. Runs in a forked child until the test file ends.
#
#   my $pid = FakeDNS::start(1953, {
#       'crawl-1.googlebot.com' => { A => ['66.249.66.1'] },
#       '1.66.249.66.in-addr.arpa' => { PTR => ['crawl-1.googlebot.com'] },
#       'slow.example' => 'silent',
#   });
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(inet_aton);

my @children;

sub encode_name {
    my $name = shift;
    $name =~ s/\.\z//;
    return join('', map { chr(length $_) . $_ } split /\./, $name) . "\0";
}

# Reads a (possibly compressed) name at $off; returns (name, offset after it).
sub read_name {
    my ($packet, $off) = @_;
    my @labels;
    my $end;
    for (1 .. 64) {
        my $len = ord substr($packet, $off, 1);
        if (($len & 0xc0) == 0xc0) {
            $end //= $off + 2;
            $off = unpack('n', substr($packet, $off, 2)) & 0x3fff;
            next;
        }
        if ($len == 0) { $end //= $off + 1; last }
        push @labels, substr($packet, $off + 1, $len);
        $off += 1 + $len;
    }
    return (lc join('.', @labels), $end);
}

sub answer {
    my ($query, $table) = @_;
    return undef if length $query < 12;
    my ($id, $flags, $qd) = unpack 'n n n', $query;
    my ($name, $off) = read_name($query, 12);
    my ($qtype, $qclass) = unpack 'n n', substr($query, $off, 4);
    my $question = substr($query, 12, $off + 4 - 12);
    my $entry = $table->{$name};
    return undef if defined $entry && !ref $entry && $entry eq 'silent';
    my %types = (1 => 'A', 28 => 'AAAA', 12 => 'PTR');
    my $type = $types{$qtype} // '';
    my @rr;
    if ($entry && $type && $entry->{$type}) {
        for my $value (@{ $entry->{$type} }) {
            my $rdata = $type eq 'A' ? inet_aton($value)
                : $type eq 'AAAA' ? Socket::inet_pton(Socket::AF_INET6(), $value)
                : encode_name($value);
            push @rr, pack('n n n N n', 0xc00c, $qtype, 1, 30, length $rdata) . $rdata;
        }
    }
    my $rcode = $entry ? 0 : 3;
    my $header = pack 'n n n n n n', $id, 0x8400 | 0x0100 | 0x0080 | $rcode, 1, scalar @rr, 0, 0;
    return $header . $question . join('', @rr);
}

sub start {
    my ($port, $table) = @_;
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
        Proto => 'udp', ReuseAddr => 1) or die "FakeDNS: cannot bind 127.0.0.1:$port/udp: $!";
    my $pid = fork // die "FakeDNS: cannot fork: $!";
    if ($pid == 0) {
        $SIG{TERM} = sub { exit 0 };
        while (1) {
            my $peer = $sock->recv(my $query, 4096) // next;
            my $reply = eval { answer($query, $table) };
            $sock->send($reply, 0, $peer) if defined $reply;
        }
    }
    close $sock;
    push @children, $pid;
    return $pid;
}

END {
    for my $pid (@children) { kill 'TERM', $pid; waitpid $pid, 0 }
}

1;
