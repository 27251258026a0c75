#!/usr/bin/perl
# Compares two runs of nginx's own test suite, test by test: scripts/nginx-tests runs each file
# with `perl FILE.t >FILE.tap`, once on bare nginx and once with the module, and this reads the
# TAP of both. Every test is ok, not ok, skip, todo (not ok # TODO) or todo-passed
# (ok # TODO); a file is skipped whole (1..0 # SKIP), or ran, and then either finished its
# plan or did not (died, timed out, bailed out).
#
#   tap-compare.pl BARE_DIR MODULE_DIR FILE.t...
#
# Prints each difference (file, test number, status on each side, the test's name), then one
# summary line per side. Exits 1 when anything differs, 0 otherwise.
use strict;
use warnings;

my ($bare_dir, $module_dir, @files) = @ARGV;
die "usage: tap-compare.pl BARE_DIR MODULE_DIR FILE.t...\n" unless $module_dir && @files;

# read_tap(PATH): { plan => N, skip_all => reason, tests => { n => [status, name] },
#                   bail => text, rc => exit status, complete => 0|1 }
sub read_tap {
    my ($dir, $file) = @_;
    my %r = (tests => {}, plan => undef, skip_all => undef, bail => undef, rc => undef);
    my $path = "$dir/$file.tap";
    if (open my $fh, '<', $path) {
        while (my $line = <$fh>) {
            $line =~ s/\r?\n\z//;
            if ($line =~ /^1\.\.(\d+)(?:\s*#\s*skip\S*\s*(.*))?$/i) {
                $r{plan} = $1;
                $r{skip_all} = $2 // 'skipped' if $1 == 0;
            } elsif ($line =~ /^(not )?ok\s+(\d+)\s*(?:-\s*)?(.*)$/) {
                my ($not, $n, $rest) = ($1, $2, $3);
                my ($name, $directive) = ($rest, '');
                if ($rest =~ /^(.*?)\s*(?<!\\)#\s*(skip|todo)\b\s*(.*)$/i) {
                    ($name, $directive) = ($1, lc $2);
                }
                my $status = $directive eq 'skip' ? 'skip'
                    : $directive eq 'todo' ? ($not ? 'todo' : 'todo-passed')
                    : $not ? 'not ok' : 'ok';
                # A number seen twice is itself a difference worth seeing.
                $status = 'duplicate' if exists $r{tests}{$n};
                $r{tests}{$n} = [$status, $name];
            } elsif ($line =~ /^Bail out!\s*(.*)$/) {
                $r{bail} = $1 || 'bailed out';
            }
        }
        close $fh;
    } else {
        $r{bail} = "no TAP ($path: $!)";
    }
    if (open my $fh, '<', "$dir/$file.rc") {
        $r{rc} = <$fh> // '';
        chomp $r{rc};
        close $fh;
    }
    my $count = keys %{$r{tests}};
    $r{complete} = defined $r{plan} && !defined $r{bail}
        && ($r{plan} == 0 || $count == $r{plan}) ? 1 : 0;
    return \%r;
}

# file_state(RESULT): what a file did as a whole, in words.
sub file_state {
    my ($r) = @_;
    return "bailed out: $r->{bail}" if defined $r->{bail};
    return "skipped whole ($r->{skip_all})" if defined $r->{skip_all};
    return 'no plan' . (defined $r->{rc} ? " (exit $r->{rc})" : '') unless defined $r->{plan};
    my $count = keys %{$r->{tests}};
    return "stopped after $count of $r->{plan} tests (exit " . ($r->{rc} // '?') . ')'
        unless $r->{complete};
    return "ran $r->{plan} tests";
}

my @differences;
my %total = map { $_ => { files => 0, ran => 0, skipped_files => 0, incomplete => 0,
                          map { $_ => 0 } 'ok', 'not ok', 'skip', 'todo', 'todo-passed', 'duplicate' } }
            qw(bare module);

for my $file (@files) {
    my %side = (bare => read_tap($bare_dir, $file), module => read_tap($module_dir, $file));
    for my $name (qw(bare module)) {
        my $r = $side{$name};
        my $t = $total{$name};
        $t->{files}++;
        if (defined $r->{skip_all}) { $t->{skipped_files}++ } else { $t->{ran}++ }
        $t->{incomplete}++ unless $r->{complete};
        $t->{$_->[0]}++ for values %{$r->{tests}};
    }
    my ($bare, $mod) = @side{qw(bare module)};
    my ($bs, $ms) = (file_state($bare), file_state($mod));
    push @differences, "$file: bare nginx $bs, with the module $ms" if $bs ne $ms;
    my %numbers = map { $_ => 1 } keys %{$bare->{tests}}, keys %{$mod->{tests}};
    for my $n (sort { $a <=> $b } keys %numbers) {
        my $bt = $bare->{tests}{$n} // ['absent', ''];
        my $mt = $mod->{tests}{$n} // ['absent', ''];
        next if $bt->[0] eq $mt->[0];
        my $name = $bt->[1] ne '' ? $bt->[1] : $mt->[1];
        push @differences, sprintf "%s test %d (%s): bare nginx %s, with the module %s",
            $file, $n, $name, $bt->[0], $mt->[0];
    }
}

for my $name (qw(bare module)) {
    my $t = $total{$name};
    my $tests = 0;
    $tests += $t->{$_} for 'ok', 'not ok', 'skip', 'todo', 'todo-passed', 'duplicate';
    printf "%-12s %d files (%d ran, %d skipped whole, %d incomplete); %d tests: %d ok, %d not ok, "
        . "%d skipped, %d todo, %d todo passed\n",
        $name eq 'bare' ? 'bare nginx:' : 'with module:', $t->{files}, $t->{ran},
        $t->{skipped_files}, $t->{incomplete}, $tests, $t->{ok}, $t->{'not ok'}, $t->{skip},
        $t->{todo}, $t->{'todo-passed'};
}
# Machine-readable totals for the caller's sanity checks.
# TOTALS <bare: files ran, tests ok, not ok> <with the module: the same>
printf "TOTALS %d %d %d %d %d %d\n",
    $total{bare}{ran}, $total{bare}{ok}, $total{bare}{'not ok'},
    $total{module}{ran}, $total{module}{ok}, $total{module}{'not ok'};

if (@differences) {
    print "DIFFERENCES (" . scalar(@differences) . "):\n";
    print "  $_\n" for @differences;
    exit 1;
}
print "no difference: every file and every test has the same result with and without the module\n";
exit 0;
