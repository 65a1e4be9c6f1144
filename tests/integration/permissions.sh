#!/bin/bash
# NAME
#	permissions - the setgid submission path and the spool's protection
# DESCRIPTION
#	Installs the built sendmail by hand the way contrib/install.sh does
#	(a copy, group mxltest, mode 2755; a spool 02770 root:mxltest) and,
#	since a setgid binary ignores -C and MXLANE_CONFIG for non-root
#	callers, points the compiled-in default config file at that spool for
#	the length of the test (the file is restored or removed by a trap).
#	Asserts:
#	  - nobody (setpriv, no supplementary groups) submits successfully,
#	    cannot list or read the spool directly, and cannot use the spool
#	    through a copy of the binary that is not setgid;
#	  - files a root command creates with umask 077 (a submission through
#	    the plain build binary, which runs with root's own group, and
#	    newaliases) are 0660 group mxltest, directories g=rwx o=---, and
#	    nobody can still submit afterwards;
#	  - for nobody, -C FILE and MXLANE_CONFIG (pointing at a spool nobody
#	    could write, or at a malformed file) are ignored; for root, -C is
#	    honoured;
#	  - DB_HOME and TMPDIR do not steer where nobody's submission goes;
#	  - the submitter recorded is the real uid and its passwd name
#	    (uid 65534/nobody, uid 1/daemon), not USER/LOGNAME (set to root);
#	  - mailq as nobody or daemon lists only that user's messages, with a
#	    matching trailer; root and a member of group mxltest list all.
#	Needs root (CI runs as root); creates group mxltest if absent and
#	removes it again.
set -u
. "$(dirname "$0")/../lib.sh"

need_cmd setpriv getent groupadd groupdel stat find
need_file "$SENDMAIL" "$QUEUERUN"
if [ "$(id -u)" -ne 0 ]; then
	fail "permissions needs root (CI runs as root)"
	finish
fi

# The config path compiled into the binary (MXL_SYSCONFDIR/mxlane/mxlane.conf).
sysconf=$(grep -ao '/[[:alnum:]_./-]*/mxlane/mxlane\.conf' "$SENDMAIL" | head -1)
sysconf=${sysconf:-/etc/mxlane/mxlane.conf}
sysconfdir=$(dirname "$sysconf")

# A directory nobody can traverse, on a file system that honours setgid
# (run.sh's scratch is 0700, and some /tmp are mounted nosuid).
P=
for base in /tmp /var/tmp "$MXL_BUILD"; do
	if findmnt -n -o OPTIONS -T "$base" 2>/dev/null | grep -qw nosuid; then
		continue
	fi
	P=$(mktemp -d "$base/mxl-perm.XXXXXX") && break
done
if [ -z "$P" ]; then
	fail "no directory on a file system without nosuid"
	finish
fi
chmod 0755 "$P"

created_group=
conf_backup=
made_confdir=
cleanup() {
	if [ -n "$conf_backup" ]; then
		cp -p "$conf_backup" "$sysconf"
	else
		rm -f "$sysconf"
	fi
	[ -z "$made_confdir" ] || rmdir "$sysconfdir" 2>/dev/null
	[ -z "$created_group" ] || groupdel mxltest
	rm -rf "$P"
	[ -n "${MXL_SCRATCH:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if ! getent group mxltest >/dev/null; then
	groupadd --system mxltest && created_group=1
fi
gid=$(getent group mxltest | cut -d: -f3)
assert_match "$gid" '^[0-9]+$' "gid of group mxltest"

if [ -e "$sysconf" ]; then
	conf_backup=$T/mxlane.conf.saved
	cp -p "$sysconf" "$conf_backup"
fi
if [ ! -d "$sysconfdir" ]; then
	mkdir -p "$sysconfdir" && made_confdir=1
fi

SM=$P/sbin/sendmail		# the setgid copy
mkdir -p "$P/sbin" "$P/evil/spool" "$P/evil/dbhome" "$P/evil/tmp" "$P/spool2"
cp "$SENDMAIL" "$SM"
chgrp mxltest "$SM"
chmod 2755 "$SM"
chmod 1777 "$P/evil" "$P/evil/spool" "$P/evil/dbhome" "$P/evil/tmp"
SP=$P/spool
mkdir "$SP"
chown root:mxltest "$SP"
chmod 02770 "$SP"
printf 'perm-alias: perm-nobody-aliased@rcpt.example\n' >"$P/aliases"
chmod 0644 "$P/aliases"

# log_file "" (syslog): a log file would be one more thing root creates.
cat >"$sysconf" <<EOF
spool_directory = "$SP"
myhostname = "host.example.org"
myorigin = "example.org"
alias_maps = "$P/aliases"
log_file = ""
immediate_delivery = false
EOF
chmod 0644 "$sysconf"
# -C for root; MXLANE_CONFIG from lib.sh must not leak into anything here.
ROOTCONF=$P/root.conf
cp "$sysconf" "$ROOTCONF"
unset MXLANE_CONFIG
cat >"$P/evil.conf" <<EOF
spool_directory = "$P/evil/spool"
myhostname = "evil.example"
myorigin = "evil.example"
alias_maps = "$P/aliases"
log_file = ""
immediate_delivery = false
EOF
printf 'spool_directory = \n  this is not { libconfuse\n' >"$P/bad.conf"
sed "s|$SP|$P/spool2|" "$sysconf" >"$P/spool2.conf"
chmod 0644 "$P"/*.conf
cd /

message() {	# message TOKEN: a small message to TOKEN@rcpt.example
	printf 'From: Perm <perm@sender.example>\nTo: <%s@rcpt.example>\nSubject: %s\n\nbody of %s\n' \
	    "$1" "$1" "$1"
}
# as UID GID [setpriv option...] -- CMD...: run as another user with a
# hostile environment: USER/LOGNAME claim root.
as() {
	local uid=$1 gid=$2
	shift 2
	local opts=()
	while [ "$1" != "--" ]; do opts+=("$1"); shift; done
	shift
	if [ -z "${MXL_SANITIZE:-}" ]; then
		setpriv --reuid="$uid" --regid="$gid" "${opts[@]}" -- \
		    env USER=root LOGNAME=root HOME=/ "$@"
		return
	fi
	# LeakSanitizer stops the process under ptrace to scan it at exit,
	# which a setgid (non-dumpable) process run by an ordinary user does
	# not allow, and such a process cannot read ASAN_OPTIONS from
	# /proc/self/environ to be told otherwise: it then exits 1 with only
	# "LeakSanitizer has encountered a fatal error" and two HINT lines.
	# Under MXL_SANITIZE exactly that case counts as exit 0; any other
	# sanitizer report still fails. Root's runs and every other test
	# check leaks on these code paths.
	local rc=0 e=$P/as.stderr
	setpriv --reuid="$uid" --regid="$gid" "${opts[@]}" -- \
	    env USER=root LOGNAME=root HOME=/ "$@" 2>"$e" || rc=$?
	if [ "$rc" -eq 1 ] && grep -q 'LeakSanitizer has encountered a fatal error' "$e" &&
	    ! grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error' "$e"; then
		rc=0
		grep -v -e 'LeakSanitizer has encountered a fatal error' \
		    -e '==HINT: ' "$e" >&2
	else
		cat "$e" >&2
	fi
	return "$rc"
}
nobody() { as 65534 65534 --clear-groups -- "$@"; }
daemon_user() { as 1 1 --clear-groups -- "$@"; }
# submit_as WHO TOKEN [sendmail args...]: WHO is nobody, daemon_user or root
submit_as() {
	local who=$1 tok=$2
	shift 2
	message "$tok" >"$P/msg.$tok"
	chmod 0644 "$P/msg.$tok"
	if [ "$who" = root ]; then
		assert_exit 0 "$SM" -t -i "$@" <"$P/msg.$tok"
	else
		assert_exit 0 "$who" "$SM" -t -i "$@" <"$P/msg.$tok"
	fi
}
# rootq: mailq of the setgid spool as root, through the plain binary
rootq() { timeout 120 "$SENDMAIL" -C "$ROOTCONF" -bp; }
# tokens: the perm-* recipients in a mailq listing on stdin, sorted
tokens() { grep -o 'perm-[a-z0-9-]*@rcpt\.example' | sed 's/@rcpt\.example$//' | sort; }
trailer_count() { sed -n 's/^-- [0-9]* Kbytes in \([0-9]*\) Requests\{0,1\}\.$/\1/p'; }
id_of() {	# id_of TOKEN: the queue id whose recipient is TOKEN
	rootq | awk -v r="$1@rcpt.example" '
	    /^[0-9A-F]/ { id = substr($1, 1, 13) }
	    $1 == r { print id; exit }'
}
# check_modes WHERE: every spool file 0660 group mxltest, directories
# group mxltest with g=rwx and nothing for others
check_modes() {
	local f m n=0 bad=
	while IFS= read -r f; do
		n=$((n + 1))
		m=$(stat -c '%a %G' "$f")
		[ "$m" = "660 mxltest" ] || bad="$bad$f: $m
"
	done < <(find "$SP" -type f)
	while IFS= read -r f; do
		m=$(stat -c '%a %G' "$f")
		case $m in
		"2770 mxltest" | "770 mxltest") ;;
		*) bad="$bad$f (directory): $m
" ;;
		esac
	done < <(find "$SP" -type d)
	if [ "$n" -gt 0 ] && [ -z "$bad" ]; then
		pass
	else
		fail "$1: spool files must be 0660 and group mxltest ($n files)" "$bad"
	fi
}

section "root creates the spool with umask 077"
message perm-root-0 >"$P/msg.root0"
assert_exit 0 sh -c 'umask 077; exec "$1" -C "$2" -t -i <"$3"' sh \
    "$SENDMAIL" "$ROOTCONF" "$P/msg.root0"
check_modes "after root's first submission (plain binary, umask 077)"

section "nobody submits through the setgid binary"
submit_as nobody perm-nobody-1
check_modes "after nobody's submission"
assert_eq "perm-nobody-1
perm-root-0" "$(rootq | tokens)" "messages queued so far"

section "root runs newaliases with umask 077; nobody still submits"
assert_exit 0 sh -c 'umask 077; exec "$1" -C "$2" -bi' sh "$SENDMAIL" "$ROOTCONF"
check_modes "after root's newaliases (umask 077)"
submit_as nobody perm-nobody-2
# To: perm-alias (unqualified, so local) must expand through the table.
printf 'From: Perm <perm@sender.example>\nTo: perm-alias\nSubject: alias\n\nbody\n' \
    >"$P/msg.alias"
assert_exit 0 nobody "$SM" -t -i <"$P/msg.alias"
assert_contains "$(rootq | tokens)" "perm-nobody-aliased" \
    "queue after nobody's message to an alias (the table root built is readable)"
check_modes "after nobody's submissions following newaliases"

section "nobody cannot read the spool directly"
run nobody ls "$SP"
assert_ne 0 "$(last_rc)" "exit status of nobody's ls of the spool"
readable=
while IFS= read -r f; do
	if nobody sh -c 'cat "$1" >/dev/null 2>&1 || test -r "$1"' sh "$f"; then
		readable="$readable$f
"
	fi
done < <(find "$SP" -type f)
assert_eq "" "$readable" "spool files nobody can read"
# The plain (not setgid) binary gives nobody no way in either.
run nobody "$SENDMAIL" -C "$ROOTCONF" -bp
assert_ne 0 "$(last_rc)" "exit status of nobody's mailq through a non-setgid binary"
assert_not_contains "$(last_out)" "perm-root-0" "nobody's mailq through a non-setgid binary"

section "-C and MXLANE_CONFIG are ignored for nobody, -C honoured for root"
submit_as nobody perm-nobody-dashc -C "$P/evil.conf"
message perm-nobody-env >"$P/msg.env"
assert_exit 0 nobody env MXLANE_CONFIG="$P/evil.conf" "$SM" -t -i <"$P/msg.env"
submit_as nobody perm-nobody-badc -C "$P/bad.conf"
message perm-nobody-badenv >"$P/msg.badenv"
assert_exit 0 nobody env MXLANE_CONFIG="$P/bad.conf" "$SM" -t -i <"$P/msg.badenv"
assert_eq "" "$(ls -A "$P/evil/spool")" "files in the spool nobody's -C/MXLANE_CONFIG named"
q=$(rootq | tokens)
for t in perm-nobody-dashc perm-nobody-env perm-nobody-badc perm-nobody-badenv; do
	assert_contains "$q" "$t" "the real spool (message $t)"
done
# root: -C is honoured (message goes to spool2, not the default spool)
message perm-root-spool2 >"$P/msg.spool2"
assert_exit 0 "$SM" -C "$P/spool2.conf" -t -i <"$P/msg.spool2"
assert_contains "$(timeout 120 "$SENDMAIL" -C "$P/spool2.conf" -bp | tokens)" \
    perm-root-spool2 "the spool root's -C named"
assert_not_contains "$(rootq | tokens)" perm-root-spool2 "the default spool"

section "DB_HOME and TMPDIR do not steer the setgid binary"
printf 'set_data_dir %s\nset_lg_dir %s\n' "$P/evil/dbhome" "$P/evil/dbhome" \
    >"$P/evil/dbhome/DB_CONFIG"
chmod 0644 "$P/evil/dbhome/DB_CONFIG"
message perm-nobody-dbhome >"$P/msg.dbhome"
assert_exit 0 nobody env DB_HOME="$P/evil/dbhome" TMPDIR="$P/evil/tmp" \
    "$SM" -t -i <"$P/msg.dbhome"
assert_eq "DB_CONFIG" "$(ls -A "$P/evil/dbhome")" "files in \$DB_HOME after nobody's submission"
assert_eq "" "$(ls -A "$P/evil/tmp")" "files in \$TMPDIR after nobody's submission"
assert_contains "$(rootq | tokens)" perm-nobody-dbhome "the real spool"

section "the submitter recorded is the real uid"
submit_as daemon_user perm-daemon-1
submit_as root perm-root-1
for spec in "perm-nobody-1 65534 nobody" "perm-nobody-dbhome 65534 nobody" \
    "perm-daemon-1 1 daemon" "perm-root-1 0 root"; do
	set -- $spec
	id=$(id_of "$1")
	assert_match "$id" '^[0-9A-F]{13}$' "queue id of $1"
	s=$(MXLANE_CONFIG=$ROOTCONF timeout 120 "$QUEUERUN" show "$id")
	assert_eq "$2" "$(printf '%s\n' "$s" | sed -n 's/^uid: //p')" "uid recorded for $1"
	assert_eq "$3" "$(printf '%s\n' "$s" | sed -n 's/^user: //p')" "user recorded for $1"
done

section "mailq shows a user only their own messages"
all=$(rootq | tokens)
mine() { printf '%s\n' "$all" | grep -- "-$1-" | sort; }
n_all=$(printf '%s\n' "$all" | grep -c .)
# nobody's list: both spellings
run nobody "$SM" -bp
assert_eq 0 "$(last_rc)" "exit status of nobody's sendmail -bp"
assert_eq "$(mine nobody)" "$(last_out | tokens)" "messages nobody's -bp lists"
assert_eq "$(mine nobody | grep -c .)" "$(last_out | trailer_count)" "request count in nobody's -bp trailer"
ln -sf "$SM" "$P/sbin/mailq"
run nobody "$P/sbin/mailq"
assert_eq 0 "$(last_rc)" "exit status of nobody's mailq"
assert_eq "$(mine nobody)" "$(last_out | tokens)" "messages nobody's mailq lists"
run daemon_user "$SM" -bp
assert_eq 0 "$(last_rc)" "exit status of daemon's mailq"
assert_eq "$(mine daemon)" "$(last_out | tokens)" "messages daemon's mailq lists"
assert_eq 1 "$(last_out | trailer_count)" "request count in daemon's trailer"
run "$SM" -bp
assert_eq 0 "$(last_rc)" "exit status of root's mailq"
assert_eq "$all" "$(last_out | tokens)" "messages root's mailq lists"
assert_eq "$n_all" "$(last_out | trailer_count)" "request count in root's trailer"
run as 65534 65534 --groups="$gid" -- "$SM" -bp
assert_eq 0 "$(last_rc)" "exit status of mailq for nobody in group mxltest"
assert_eq "$all" "$(last_out | tokens)" "messages listed for a member of group mxltest"

finish
