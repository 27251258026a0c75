package Test::Nginx::Util;

# Fallback re-implementation of openresty/test-nginx's Test::Nginx::Util
# (v0.29), used only when the real Test::Nginx is not installed.  It owns
# the nginx side of a test run: globals/settings, the generated nginx.conf,
# the server root, starting/stopping nginx and the per-block driver
# (run_tests/run_test).  The HTTP client side and the response checks live in
# Test::Nginx::Socket.  See t/compat/README.md for what is (not) supported.
#
# Behaviour that decides test results (config template, restarts, which
# error.log lines are checked, assertion counts) follows the real module;
# things that only affect timing or stderr noise are simplified.

use strict;
use warnings;

our $VERSION = '0.29';   # the upstream version whose behaviour we mirror

use base 'Exporter';

use POSIX qw( SIGQUIT SIGKILL SIGTERM :sys_wait_h );
use File::Spec ();
use File::Path qw( make_path remove_tree );
use List::Util qw( shuffle );
use Time::HiRes qw( sleep );
use IO::Socket::INET ();
use Test::LongString;
use Carp qw( croak );
use Config ();
use Scalar::Util qw( looks_like_number );

# Test modes of the real module that this fallback does not implement: refuse
# to run rather than silently running in the normal mode.
for my $env (qw( TEST_NGINX_USE_HUP TEST_NGINX_USE_VALGRIND TEST_NGINX_USE_STAP
                 TEST_NGINX_USE_RR TEST_NGINX_CHECK_LEAK TEST_NGINX_BENCHMARK
                 TEST_NGINX_USE_HTTP2 TEST_NGINX_USE_HTTP3
                 TEST_NGINX_NO_NGINX_MANAGER ))
{
    die "Test::Nginx compat fallback (t/compat): \$$env is not supported; "
        . "install the real Test::Nginx (openresty/test-nginx) to use it.\n"
        if $ENV{$env};
}

sub gen_rand_port (;$$);
sub bail_out (@);

sub unsupported ($) {
    my $what = shift;
    croak "Test::Nginx compat fallback (t/compat): $what is not supported; "
          . "install the real Test::Nginx (openresty/test-nginx) to use it";
}

# ---------------------------------------------------------------- settings
# Same defaults and environment variables as the real Util.pm.

our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort || 1984;
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $NoRootLocation       = 0;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $ReusePort            = $ENV{TEST_NGINX_REUSE_PORT};
our $EventType            = $ENV{TEST_NGINX_EVENT_TYPE};
our $Randomize            = $ENV{TEST_NGINX_RANDOMIZE};
our $Verbose              = $ENV{TEST_NGINX_VERBOSE};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $ForceRestartOnTest   = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                            ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;
our $RepeatEach           = 1;
our $NoLongString;
our $ConfigPreamble       = '';
our $FilterHttpConfig;
our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers);
our ($NginxVersion, $NginxRawVersion, $OpenSSLVersion);
our ($PrevConfig, $ErrLogFilePos);
our $CheckLeak = 0;      # exported for compatibility; the mode is refused above
our $Benchmark = 0;

# Set by Test::Nginx::Socket: the per-request driver and the error.log check.
our ($RunTestHelper, $CheckErrorLog);

if (defined $WorkerUser && $WorkerUser !~ /^\w+(?:\s+\w+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

srand $$;

if ($Randomize) {
    $ServerPort = gen_rand_port(1000)
        or die "Cannot find an available listening port number.\n";
    $ServerPortForClient = $ServerPort;
}

our $ServRoot = $Randomize
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : ($ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot'));
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');

# Sections this fallback understands.  Anything else in a block makes the
# block fail (see run_test) instead of being silently ignored.  Test files may
# push extra names (e.g. sections consumed by their own block preprocessor)
# onto @Test::Nginx::Util::KnownSections; that is harmless under the real one.
our @KnownSections = qw(
    ONLY SKIP LAST
    config http_config main_config post_main_config server_name user_files
    log_level error_log_file must_die init timeout wait no_check_leak
    skip_nginx skip_nginx2 skip_eval skip_openssl todo todo_nginx
    request request_eval raw_request pipelined_requests more_headers
    raw_request_middle_delay server_addr_for_client abort shutdown
    ignore_response http09
    error_code error_code_like
    response_body response_body_eval response_body_like response_body_unlike
    response_body_filters charset
    response_headers response_headers_like
    raw_response_headers_like raw_response_headers_unlike
    error_log no_error_log grep_error_log grep_error_log_out
    access_log no_access_log
);
# Keys Test::Base itself stores in a block object.
my %InternalKeys = map { $_ => 1 } qw( name description seq_num is_filtered
    blocks_object original_values _section_map _section_order );

our @EXPORT = qw(
    env_to_nginx is_str check_accum_error_log is_running no_long_string
    server_addr server_name parse_time verbose sleep_time bail_out
    add_cleanup_handler access_log_data error_log_data setup_server_root
    write_config_file get_canon_version get_nginx_version trim show_all_chars
    parse_headers run_tests run_test get_pid_from_pidfile add_block_preprocessor
    timeout worker_connections workers master_on master_off config_preamble
    repeat_each master_process_enabled log_level no_shuffle no_root_location
    html_dir server_root server_port server_port_for_client no_nginx_manager
    use_hup use_http2 use_http3
    $NoLongString $ServerAddr $ServerName $ServerPortForClient $ServerPort
    $NginxVersion $PidFile $ServRoot $ConfFile $RunTestHelper $CheckErrorLog
    $FilterHttpConfig $RepeatEach $CheckLeak $Benchmark
);

# ------------------------------------------------- setters/getters (exported)

sub _accessor { my $ref = shift; $$ref = shift if @_; return $$ref }

sub server_addr (@)            { _accessor(\$ServerAddr, @_) }
sub server_name (@)            { _accessor(\$ServerName, @_) }
sub server_port (@)            { _accessor(\$ServerPort, @_) }
sub server_port_for_client (@) { _accessor(\$ServerPortForClient, @_) }
sub timeout (@)                { _accessor(\$Timeout, @_) }
sub workers (@)                { _accessor(\$Workers, @_) }
sub worker_connections (@)     { _accessor(\$WorkerConnections, @_) }
sub log_level (@)              { _accessor(\$LogLevel, @_) }
sub repeat_each (@)            { _accessor(\$RepeatEach, @_) }
sub config_preamble ($)        { $ConfigPreamble = shift }
sub no_long_string ()          { $NoLongString = 1 }
sub no_shuffle ()              { $NoShuffle = 1 }
sub no_root_location ()        { $NoRootLocation = 1 }
sub check_accum_error_log ()   { $CheckAccumErrLog = 1 }
sub master_on ()               { $MasterProcessEnabled = 'on' }
sub master_off ()              { $MasterProcessEnabled = 'off' }
sub html_dir ()                { $HtmlDir }
sub server_root ()             { $ServRoot }
sub sleep_time                 { $TestNginxSleep }
sub verbose                    { $Verbose }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)    { unshift @CleanupHandlers, shift }

sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = shift() ? 'on' : 'off';
}

sub use_hup ()          { unsupported('use_hup() (HUP reload mode)') }
sub no_nginx_manager () { unsupported('no_nginx_manager()') }
sub use_http2 ($)       { return undef }   # never: HTTP/2 mode is refused above
sub use_http3 ($)       { return undef }

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

# ------------------------------------------------------------- small helpers

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return Test::More::like($got, $expected, $desc)
        if ref $expected && ref $expected eq 'Regexp';
    return Test::More::is($got, $expected, $desc) if $NoLongString;
    return is_string($got, $expected, $desc);
}

sub parse_time ($) {
    my $tm = shift;
    if (defined $tm) {
        if ($tm =~ s/([^_a-zA-Z])ms$/$1/) { $tm = $tm / 1000 }
        else { $tm =~ s/([^_a-zA-Z])s$/$1/ }
    }
    return $tm;
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

sub show_all_chars ($) {
    my $s = shift;
    $s =~ s/\n/\\n/gs; $s =~ s/\r/\\r/gs; $s =~ s/\t/\\t/gs;
    return $s;
}

# "--- response_headers" syntax: "Key: value" per line, "!Key" = must be absent.
sub parse_headers ($) {
    my $s = shift;
    my %headers;
    for (split /\n/, $s) {
        s/^\s+|\s+$//g;
        if (s/^!\s*//) { $headers{$_} = undef; next }
        my ($key, $val) = split /\s*:\s*/, $_, 2;
        $headers{$key} = $val;
    }
    return \%headers;
}

sub get_canon_version (@) { sprintf "%d.%03d%03d", $_[0], $_[1], $_[2] }

sub get_canon_version_for_OpenSSL (@) {
    return sprintf "%d.%03d%03d%03d", @_[0 .. 2], ord($_[3]) - ord('a')
        if defined $_[3];
    return get_canon_version(@_);
}

sub gen_rand_port (;$$) {
    my ($tries, $used) = @_;
    $tries //= 1000;
    $used  //= {};
    for (1 .. $tries) {
        my $port = int(rand 63550) + 1985;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(LocalAddr => $ServerAddr,
            LocalPort => $port, Proto => 'tcp', Timeout => 0.1);
        if ($sock) { $sock->close; return $port }
    }
    return undef;
}

sub can_run ($) {
    my $cmd = shift;
    return (-f $cmd && -x _) ? $cmd : undef if $cmd =~ m{[/\\]};
    for my $dir ((split /\Q$Config::Config{path_sep}\E/, $ENV{PATH} // ''), '.') {
        next if $dir eq '';
        my $abs = File::Spec->catfile($dir, $cmd);
        return $abs if -f $abs && -x _;
    }
    return undef;
}

# Sets $NginxVersion (e.g. 1.022001) and $OpenSSLVersion from "nginx -V".
sub get_nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the Nginx in PATH: " . ($out // ''));
    }
    if ($out =~ m{built with OpenSSL (\d+)\.(\d+)\.(\d+)([a-z])?}s) {
        $OpenSSLVersion = get_canon_version_for_OpenSSL($1, $2, $3, $4);
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return get_canon_version($1, $2, $3);
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

# Replaces $TEST_NGINX_FOO with $ENV{TEST_NGINX_FOO}; an unset variable aborts
# the whole run (bail_out), as in the real module.  $TEST_NGINX_RAND_PORT_N
# becomes a free port, the same one for the same N within a block.
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;
    my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            $rand_ports->{$var} //= do {
                my $p = gen_rand_port(1000, \%used)
                    or bail_out("$name - Cannot find an available listening port number for $var.\n");
                $used{$p} = 1;
                $p;
            };
        } else {
            bail_out("$name - No environment $var defined.\n")
                unless defined $ENV{$var};
            $ENV{$var};
        }
    }eg;
    return $text;
}

# ------------------------------------------------------ processes & cleanup

sub is_running ($) {
    my $pid = shift;
    return 0 unless kill 0, $pid;
    # The daemonised nginx is not our child.  Where nothing reaps orphans
    # (e.g. a container whose PID 1 is not an init) it lingers as a zombie
    # that "kill 0" still reports; treat it as gone to avoid long waits.
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        return 0 if $stat =~ /^\d+ \(.*\) Z/s;
    }
    return 1;
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile
        or bail_out("$name - Failed to open the pid file $PidFile for reading: $!");
    my $pid = do { local $/; <$in> };
    close $in;
    chomp $pid if defined $pid;
    return $pid;
}

# QUIT (graceful stop, as the real module does), then TERM, then KILL.
sub kill_process ($$$) {
    my ($pid, $wait, $name) = @_;
    kill SIGQUIT, $pid;
    my $left = timeout();
    while ($left > 0 && is_running($pid)) { sleep 0.02; $left -= 0.02 }
    return unless is_running($pid);
    warn "$name - timeout when waiting for the process $pid to exit\n";
    kill SIGTERM, $pid;
    for (1 .. 50) { return unless is_running($pid); sleep 0.02 }
    warn "$name - WARNING: killing the child process $pid with force...\n";
    # nginx daemonises with setsid(), so the pid is also its process group.
    kill SIGKILL, (getpgrp($pid) == $pid ? -$pid : $pid);
    sleep 0.05;
}

# Stop the nginx started for a previous block (if it is still there).
sub stop_nginx ($) {
    my $name = shift;
    return unless -f $PidFile;
    my $pid = get_pid_from_pidfile($name);
    if (defined $pid && $pid =~ /^\d+$/ && is_running($pid)) {
        kill_process($pid, 1, $name);
    } elsif (-f $PidFile) {
        unlink $PidFile or warn "WARNING: failed to remove pid file $PidFile\n";
    }
}

sub cleanup () {
    $_->() for @CleanupHandlers;
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(@_);
}

END {
    cleanup();
    if (!$ENV{TEST_NGINX_NO_CLEAN} && defined $PidFile && -f $PidFile) {
        local $?;   # do not disturb Test::Builder's exit code
        my $pid = get_pid_from_pidfile('END');
        if ($pid && is_running($pid)) { kill_process($pid, 1, 'END') }
        else { unlink $PidFile }
    }
    if ($Randomize && -d $ServRoot && $ServRoot =~ m{/t/servroot_\d+$}) {
        remove_tree($ServRoot);
    }
}

# ------------------------------------------------------------------ log data

# Lines of error.log written since the previous call (unless
# check_accum_error_log), so each request only sees its own log lines.
sub error_log_data () {
    sleep $TestNginxSleep * 3;   # let the log phase of the request finish
    open my $in, '<', $ErrLogFile or return undef;
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

# The whole access.log (the real module does not remember a position here).
sub access_log_data () {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or die "open $AccLogFile failed: $!";
    my @lines = <$in>;
    close $in;
    return \@lines;
}

# ------------------------------------------------------- server root & conf

sub setup_server_root ($) {
    if (-d $ServRoot) {
        # Only remove what we create, so a mis-set TEST_NGINX_SERVROOT
        # cannot wipe real data (the rmdir fails instead).
        remove_tree($ConfDir, glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"),
                    $HtmlDir, $LogDir);
        rmdir $ServRoot or bail_out("Can't remove $ServRoot (not empty?): $!");
    }
    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        mkdir $dir or bail_out("Failed to do mkdir $dir\n");
    }
    my $index = "$HtmlDir/index.html";
    open my $out, '>', $index or bail_out("Can't open $index for writing: $!\n");
    print $out '<html><head><title>It works!</title></head><body>It works!</body></html>';
    close $out;
}

# "--- user_files": ">>> path [touch-date]" headers followed by contents, or
# (with eval) [[path, body, date], ...].  Relative paths go under html/.
sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name  = $block->name;
    my $files = $block->user_files or return;
    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) { push @list, [$1, undef, $2] }
            elsif (@list) { $list[-1][1] .= $line }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: " . ref($files)
                 . ", only scalar or ARRAY are accepted");
    }
    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1) or bail_out("$name - Cannot create directory $1");
        }
        $body = expand_env_in_text($body // '', $name, $rand_ports);
        open my $out, '>', $path or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            my $cmd = "TZ=GMT touch -t '$date' $HtmlDir/$fname";
            system($cmd) == 0 or bail_out("Failed to run shell command: $cmd\n");
        }
    }
}

# Writes conf/nginx.conf with the same layout as the real module.
sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my $http_config = expand_env_in_text($block->http_config, $name, $rand_ports) // '';
    $http_config = $FilterHttpConfig->($http_config) if $FilterHttpConfig;
    $config //= '';

    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        # Like upstream: appended after main_config, joined by spaces.
        my @modules = map { "load_module $_;" } grep { $_ } split /\s+/, $LoadModules;
        $main_config .= join ' ', @modules;
    }
    $main_config = expand_env_in_text($main_config, $name, $rand_ports);
    my $post_main_config =
        expand_env_in_text($block->post_main_config, $name, $rand_ports) // '';

    my $err_log_file = $block->error_log_file || $ErrLogFile;
    my $server_name  = $block->server_name // $ServerName;
    my $listen_opts  = $ReusePort ? ' reuseport' : '';

    open my $out, '>', $ConfFile or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out <<_EOC_;
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
env DYLD_INSERT_LIBRARIES;
env DYLD_FORCE_FLAT_NAMESPACE;
_EOC_
    for my $v (@EnvToNginx) {
        print $out $v =~ /\s/ ? "env '$v';\n" : "env $v;\n";
    }
    print $out <<_EOC_;
#env LUA_PATH;
#env LUA_CPATH;

$main_config

http {
    access_log $AccLogFile;
    #access_log off;

    default_type text/plain;
    keepalive_timeout  68;

$http_config

    server {
        listen          $ServerPort$listen_opts;
        server_name     '$server_name';

        client_max_body_size 30M;
        #client_body_buffer_size 4k;


        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

_EOC_
    print $out <<_EOC_ unless $NoRootLocation;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    print $out "    }\n";
    print $out <<_EOC_;
}

$post_main_config

#timer_resolution 100ms;

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
_EOC_
    print $out "    use $EventType;\n" if $EventType;
    print $out "}\n";
    print $out <<_EOC_;
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
_EOC_
    if (defined $WorkerUser) { print $out "user $WorkerUser;\n" }
    elsif ($> == 0)          { print $out "user root;\n" }
    close $out;
}

# ------------------------------------------------------------------ driver

sub run_tests () {
    $NginxVersion = get_nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;

    # Blocks run in random order unless no_shuffle(), as upstream.
    my @blocks = Test::Base::blocks();
    for my $block ($NoShuffle ? @blocks : shuffle @blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value('name', $0 . ' ' . $block->name);
        run_test($block);
    }
    cleanup();
}

my %VersionOps = (
    '<'  => sub { $_[0] <  $_[1] }, '<=' => sub { $_[0] <= $_[1] },
    '>'  => sub { $_[0] >  $_[1] }, '>=' => sub { $_[0] >= $_[1] },
);

# Evaluates skip_nginx/skip_nginx2/skip_eval/skip_openssl/todo/todo_nginx.
# Returns ($should_skip, $should_todo, $tests_to_skip, $skip_reason, $todo_reason).
sub skip_conditions ($) {
    my $block = shift;
    my $name  = $block->name;
    my ($skip, $todo, $count, $skip_reason, $todo_reason);
    my $ver = qr/([<>]=?) \s* (\d+)\.(\d+)\.(\d+)/x;

    if (defined(my $spec = $block->skip_eval)) {
        if ($spec =~ /^ \s* (\d+) \s* : \s* (.*)/xs) {
            ($count, $skip_reason) = ($1, 'skip_eval');
            $skip = eval $2;
            bail_out("$name - skip_eval - failed to eval the Perl code \"$2\": $@") if $@;
        }
    }
    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^ \s* (\d+) \s* : \s* $ver (?: \s* : \s* (.*) )? \s*$/x
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        $count = $1;
        $skip_reason = $6 || "nginx version $2 $3.$4.$5";
        $skip = 1 if $VersionOps{$2}->($NginxVersion, get_canon_version($3, $4, $5));
    } elsif (defined(my $spec2 = $block->skip_nginx2)) {
        $spec2 =~ /^ \s* (\d+) \s* : \s* $ver \s* (or|and) \s* $ver (?: \s* : \s* (.*) )? \s*$/x
            or bail_out("$name - Invalid --- skip_nginx2 spec: $spec2");
        $count = $1;
        $skip_reason = $11;
        my $c1 = $VersionOps{$2}->($NginxVersion, get_canon_version($3, $4, $5));
        my $c2 = $VersionOps{$7}->($NginxVersion, get_canon_version($8, $9, $10));
        $skip = 1 if $6 eq 'or' ? ($c1 || $c2) : ($c1 && $c2);
    }
    if (defined(my $spec = $block->skip_openssl)) {
        $spec =~ /^ \s* (\d+) \s* : \s* $ver ([a-z])? (?: \s* : \s* (.*) )? \s*$/x
            or bail_out("$name - Invalid --- skip_openssl spec: $spec");
        $count = $1;
        $skip_reason = $7 || (defined $OpenSSLVersion
            ? "OpenSSL version $2 $3.$4.$5" . ($6 // '') : "Not built with OpenSSL");
        $skip = 1 if !defined $OpenSSLVersion
            || $VersionOps{$2}->($OpenSSLVersion, get_canon_version_for_OpenSSL($3, $4, $5, $6));
    }
    if (defined(my $spec = $block->todo_nginx)) {
        $spec =~ /^ \s* $ver (?: \s* : \s* (.*) )? \s*$/x
            or bail_out("$name - Invalid --- todo_nginx spec: $spec");
        $todo_reason = $5;
        $todo = 1 if $VersionOps{$1}->($NginxVersion, get_canon_version($2, $3, $4));
    }
    if (defined(my $spec = $block->todo)) {
        $spec =~ /^ \s* (\d+) \s* : \s* (.*)/xs
            or bail_out("$name - Invalid --- todo spec: $spec");
        ($todo, $count, $todo_reason) = (1, $1, $2);
    }
    return ($skip, $todo, $count, $skip_reason // 'various reasons',
            $todo_reason // 'various reasons');
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;
    my $name = $block->name;

    # Fail loudly on sections we would otherwise silently ignore.
    my %known = map { $_ => 1 } @KnownSections;
    my @unknown = sort grep { !$known{$_} && !$InternalKeys{$_} } keys %$block;
    if (@unknown) {
        Test::More::fail("$name - section(s) not supported by the Test::Nginx compat "
            . "fallback (t/compat): " . join(', ', map { "--- $_" } @unknown));
        return;
    }

    my $rand_ports = {};
    my $config = expand_env_in_text($block->config, $name, $rand_ports);
    local $LogLevel = $LogLevel;
    $LogLevel = $block->log_level if $block->log_level;
    my $must_die = $block->must_die;
    my $dry_run  = 0;

    # Restart nginx for every block (TEST_NGINX_FORCE_RESTART_ON_TEST=1, the
    # default) or when "--- config" changed; a block without "--- config"
    # reuses the running nginx of the previous block.
    my $should_restart;
    if (!defined $config) {
        bail_out("$name - No '--- config' section specified and could not get "
                 . "previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?")
            unless defined $PrevConfig;
        $should_restart = 0;
    } else {
        $should_restart = $ForceRestartOnTest
            || !defined $PrevConfig || $config ne $PrevConfig;
    }

    my ($should_skip, $should_todo, $tests_to_skip, $skip_reason, $todo_reason)
        = skip_conditions($block);

    if (!$should_skip && $should_restart) {
        $PrevConfig = $config;
        stop_nginx($name);
        setup_server_root(1);
        write_user_files($block, $rand_ports);
        write_config_file($block, $config, $rand_ports);
        can_run($NginxBinary)
            or bail_out("$name - Cannot find the nginx executable in the PATH environment");

        # stdout is discarded, stderr is left alone (config errors show up
        # there), exactly like upstream.
        my $cmd = "$NginxBinary -p $ServRoot/ -c $ConfFile > /dev/null";
        $ErrLogFilePos = 0;
        my ($i, $waited) = (0, 0);
        while (1) {
            system($cmd);
            my $status = $?;
            my $exit_code = $status == -1 ? undef : $status >> 8;
            my $coredump  = $status != -1 && ($status & 128);

            if (defined $must_die) {
                # One assertion for how nginx died, then the error_log checks
                # against logs/error.log (not stderr), per repeat_each round.
                if ($status == -1) {
                    Test::More::fail("$name - failed to execute the nginx command line");
                } elsif ($coredump) {
                    Test::More::fail("$name - nginx core dumped");
                } elsif (looks_like_number($must_die)) {
                    Test::More::is($must_die, $exit_code, "$name - die with the expected exit code");
                } else {
                    Test::More::isnt($status, 0, "$name - die as expected");
                }
                $CheckErrorLog->($block, undef, $dry_run, $i, 0);
                if ($status == 0) {
                    warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
                    for (1 .. 15) { last if -f $PidFile; sleep $TestNginxSleep }
                    my $pid = get_pid_from_pidfile($name);
                    kill_process($pid, 1, $name) if $pid;
                }
                next if ++$i < $RepeatEach;
                return;
            }

            last if $status == 0;

            if ($ENV{TEST_NGINX_IGNORE_MISSING_DIRECTIVES}
                and my $directive = check_if_missing_directives())
            {
                $dry_run = "the lack of directive $directive";
                last;
            }
            # Retry for up to 30 s (e.g. the port is still held), then abort
            # the whole run, like upstream.
            $i++;
            my $delay = 0.1 * $i;
            $delay = 1 if $delay > 1;
            sleep $delay;
            $waited += $delay;
            bail_out("$name - Cannot start nginx using command \"$cmd\" (status code $status).")
                if $waited >= 30;
        }
        sleep $TestNginxSleep;
    }

    if ($block->init) {
        eval $block->init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;
    for my $i (1 .. $RepeatEach) {
        write_user_files($block, $rand_ports) if $i > 1;
        if ($should_skip && defined $tests_to_skip) {
            SKIP: { Test::More::skip("$name - $skip_reason", $tests_to_skip) }
        } elsif ($should_todo) {
            TODO: { Test::More::todo_skip("$name - $todo_reason", $tests_to_skip) }
        } else {
            $RunTestHelper->($block, $dry_run, $i - 1);
        }
    }

    if (my $total_errlog = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $ErrLogFile) {
            open my $out, '>>', $total_errlog
                or bail_out("Failed to append test case title to $total_errlog: $!\n");
            print $out "\n=== $0 $name\n";
            close $out;
            system("cat $ErrLogFile >> $total_errlog") == 0
                or bail_out("Failed to append $ErrLogFile to $total_errlog. Abort.\n");
        }
    }
}

sub check_if_missing_directives () {
    open my $in, '<', $ErrLogFile or return 0;
    while (<$in>) {
        return $1 if /\[emerg\] \S+?: unknown directive "([^"]+)"/;
    }
    return 0;
}

1;
