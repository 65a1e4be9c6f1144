#!/bin/bash
# NAME
#	aliases_include - :include: lists against the user who owns them
# DESCRIPTION
#	The attack on a shared host: root's /etc/aliases names a list in a
#	user's directory, and the user turns the list into a way to read
#	root's files or to hang newaliases. As root, creates a throwaway
#	system user (mxlinc$$, removed by a trap) who owns a directory with
#	a list, and asserts, with root running newaliases and a submission
#	to the alias (recipients read back with queuerun show):
#	  - the plain list is expanded;
#	  - the list replaced by the user with a symbolic link to a
#	    root-only 0600 file is refused with a warning naming it, and
#	    none of that file's lines become recipients or reach stderr, the
#	    log or the queue; the alias keeps its other targets;
#	  - a symbolic link to the list's directory is refused;
#	  - a FIFO in place of the list is refused at once (newaliases under
#	    `timeout`, exit 0, in a few seconds);
#	  - a hard link to a root-only file is refused (made by root: with
#	    fs.protected_hardlinks the user cannot make one);
#	  - a world-writable (sticky) list directory, and a root-owned list
#	    in the user's directory, are refused;
#	  - the user's 0600 list is read, as the user: the same list at mode
#	    000 (which root could read) is refused, and a root-only file
#	    named in the user's list is not read;
#	  - a line of the list that does not parse is reported as
#	    FILE:LINE: reason, without its text, and its control characters
#	    reach neither stderr nor the log; a bad line in the aliases file
#	    itself fails newaliases, again without its text;
#	  - an alias left with no targets refuses mail sent to it alone.
#	Needs root (CI runs as root).
set -u
. "$(dirname "$0")/../lib.sh"

need_cmd useradd userdel setpriv mkfifo timeout date
need_file "$SENDMAIL" "$QUEUERUN"
if [ "$(id -u)" -ne 0 ]; then
	fail "aliases_include needs root (CI runs as root)"
	finish
fi

U=mxlinc$$
made_user=
P=
cleanup() {
	[ -z "$made_user" ] || userdel "$U" 2>/dev/null
	[ -z "$made_user" ] || ! getent group "$U" >/dev/null ||
	    groupdel "$U" 2>/dev/null
	[ -z "$P" ] || rm -rf "$P"
}
on_exit cleanup

if useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$U"; then
	made_user=1
	pass
else
	fail "useradd $U"
	finish
fi
UID_U=$(id -u "$U")
GID_U=$(id -g "$U")

# A directory the user can reach: run.sh's scratch is 0700.
P=$(mktemp -d /tmp/mxlinc.XXXXXX)
chmod 0755 "$P"
H=$P/home			# the user's
LISTS=$H/lists
LIST=$LISTS/team
SECRET=$P/rootonly		# root's, 0600; its lines say "secret"
printf 'secret-carol@example.net\nsecret line two\n' >"$SECRET"
chmod 0600 "$SECRET"
mkdir "$H"
chown "$U:$U" "$H"

# as_user CMD...: run CMD as the throwaway user
as_user() {
	setpriv --reuid "$UID_U" --regid "$GID_U" --init-groups -- "$@"
}

# fresh_list: the user's plain list, as the user made it
fresh_list() {
	rm -rf "$LISTS" "$H/real"
	as_user mkdir -m 0755 "$LISTS"
	as_user sh -c "printf 'carol@example.net\ndave@example.net, erin@example.net\n' >'$LIST'"
}

MSG='Subject: aliases_include test

body
'

# world NAME ALIASES-TEXT: a fresh spool with these aliases, compiled;
# newaliases' output is in last_out/last_err
world() {
	setup "$1"
	printf '%s' "$2" >"$ALIASES"
	assert_exit 0 "$NEWALIASES"
	cp "$ERR" "$W/newaliases.err"
}

# rcpts NAME: the recipients of a message to NAME, one a line
rcpts() {
	printf '%s' "$MSG" | assert_exit 0 "$SENDMAIL" -i "$1"
	env_rcpts "$(only_id)"
}

# no_secret WHAT: nothing of root's file anywhere the user could see,
# nor in what root saw
no_secret() {
	local q
	q=$(timeout -k 5 "$CMD_TIMEOUT" "$SENDMAIL" -bp 2>&1
	    for id in $(queue_ids); do show "$id"; done)
	assert_not_contains "$q" secret "$1: the queue (mailq, queuerun show)"
	assert_not_contains "$(cat "$W/newaliases.err")" secret \
	    "$1: newaliases' stderr"
	assert_not_contains "$(cat "$LOGFILE" 2>/dev/null)" secret \
	    "$1: the log"
}

ALIASES_TEXT="team: :include:$LIST, keep@example.com
"

section "a plain list is expanded"
fresh_list
world plain "$ALIASES_TEXT"
assert_eq "" "$(cat "$W/newaliases.err")" "newaliases' stderr"
assert_eq "$(printf '%s\n' carol@example.net dave@example.net \
    erin@example.net keep@example.com | sort)" "$(rcpts team)" \
    "recipients of the plain list"

section "the list replaced by a symlink to a root-only file"
fresh_list
as_user rm "$LIST"
as_user ln -s "$SECRET" "$LIST"
world symlink "$ALIASES_TEXT"
assert_contains "$(cat "$W/newaliases.err")" \
    "include file $LIST ignored: $LIST is a symbolic link" "warning"
assert_eq keep@example.com "$(rcpts team)" "recipients"
no_secret "symlinked list"

section "a symlinked directory on the way to the list"
fresh_list
as_user mv "$LISTS" "$H/real"
as_user ln -s real "$LISTS"
world symdir "$ALIASES_TEXT"
assert_contains "$(cat "$W/newaliases.err")" \
    "include file $LIST ignored: $LISTS is a symbolic link" "warning"
assert_eq keep@example.com "$(rcpts team)" "recipients"

section "a FIFO in place of the list does not hang newaliases"
fresh_list
as_user rm "$LIST"
as_user mkfifo -m 0644 "$LIST"
setup fifo
printf '%s' "$ALIASES_TEXT" >"$ALIASES"
t0=$(date +%s%N)
run timeout -k 2 20 "$NEWALIASES"
t1=$(date +%s%N)
assert_eq 0 "$(last_rc)" "newaliases' exit status (124: it hung)"
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -lt 5000 ]; then
	pass
else
	fail "newaliases took ${ms} ms over a FIFO"
fi
assert_contains "$(last_err)" "include file $LIST ignored: $LIST is not a regular file" \
    "warning"
assert_eq keep@example.com "$(rcpts team)" "recipients"

section "a hard link to a root-only file"
fresh_list
rm "$LIST"
# Made by root: with fs.protected_hardlinks=1 the user cannot link a
# file they cannot read; without it (or made earlier) they could.
ln "$SECRET" "$LIST"
world hardlink "$ALIASES_TEXT"
assert_contains "$(cat "$W/newaliases.err")" \
    "include file $LIST ignored: $LIST has 2 hard links" "warning"
assert_eq keep@example.com "$(rcpts team)" "recipients"
no_secret "hard-linked list"
rm "$LIST"

section "a list directory all users can write, sticky or not"
fresh_list
as_user chmod 1777 "$LISTS"
world sticky "$ALIASES_TEXT"
assert_contains "$(cat "$W/newaliases.err")" \
    "include file $LIST ignored: $LIST is in directory $LISTS, which all users can write" \
    "warning"
assert_eq keep@example.com "$(rcpts team)" "recipients"

section "a root-owned list in the user's directory"
fresh_list
cp "$SECRET" "$LISTS/rootlist"
chmod 0644 "$LISTS/rootlist"
world rootlist "team: :include:$LISTS/rootlist, keep@example.com
"
assert_contains "$(cat "$W/newaliases.err")" \
    "$LISTS/rootlist is owned by root but directory $H is owned by uid $UID_U" \
    "warning"
assert_eq keep@example.com "$(rcpts team)" "recipients"
no_secret "root-owned list in the user's directory"

section "the user's 0600 list is read, as the user"
fresh_list
as_user chmod 0600 "$LIST"
as_user chmod 0700 "$LISTS"
world private "$ALIASES_TEXT"
assert_eq "" "$(cat "$W/newaliases.err")" "newaliases' stderr"
assert_eq "$(printf '%s\n' carol@example.net dave@example.net \
    erin@example.net keep@example.com | sort)" "$(rcpts team)" \
    "recipients of the 0600 list"
# Mode 000: root could read it, the user cannot: so it is not read.
as_user chmod 0000 "$LIST"
world locked "$ALIASES_TEXT"
assert_contains "$(cat "$W/newaliases.err")" \
    "include file $LIST ignored: $LIST: Permission denied" "warning"
assert_eq keep@example.com "$(rcpts team)" "recipients"
# What the user's list includes is read as the user too.
as_user chmod 0600 "$LIST"
as_user sh -c "printf 'carol@example.net\n:include:$SECRET\n' >'$LIST'"
world nested "$ALIASES_TEXT"
assert_contains "$(cat "$W/newaliases.err")" \
    "$LIST:2: include file $SECRET ignored: $SECRET: Permission denied" \
    "warning"
assert_eq "$(printf '%s\n' carol@example.net keep@example.com | sort)" \
    "$(rcpts team)" "recipients"
no_secret "a root-only file named in the user's list"

section "a line that does not parse is not repeated"
fresh_list
as_user sh -c "printf 'carol@example.net\nsecret-token has spaces@example.net\n\"|/bin/x \033]0;secret-title\007\"\nx@secret-domain..example\ndave@example.net\n' >'$LIST'"
world badline "$ALIASES_TEXT"
E=$(cat "$W/newaliases.err")
assert_contains "$E" "$LIST:2: target 1: unexpected text, line skipped" "warning"
assert_contains "$E" "$LIST:3: target 1: control character in a command or file name, line skipped" \
    "warning"
assert_contains "$E" "$LIST:4: target 1: invalid domain, line skipped" "warning"
assert_eq "$(printf '%s\n' carol@example.net dave@example.net \
    keep@example.com | sort)" "$(rcpts team)" "recipients"
no_secret "unparsable lines"
if LC_ALL=C grep -q '[[:cntrl:]]' <(tr -d '\n' <"$W/newaliases.err"; tr -d '\n' <"$LOGFILE" 2>/dev/null); then
	fail "a control character reached stderr or the log" \
	    "$(od -c "$W/newaliases.err" | head -20)"
else
	pass
fi
# The aliases file's own bad line fails newaliases, still unquoted.
setup badmain
printf 'good: a@example.com\nsecret-token name: x@example.com\nother: b@example.com, secret@bad..example\n' \
    >"$ALIASES"
assert_exit 65 "$NEWALIASES"
assert_contains "$(last_err)" "$ALIASES:2: bad alias name: space outside quotes" \
    "newaliases error"
assert_not_contains "$(last_err; cat "$LOGFILE" 2>/dev/null)" secret \
    "stderr and log of newaliases"
printf 'good: a@example.com\nother: b@example.com, secret@bad..example\n' \
    >"$ALIASES"
assert_exit 65 "$NEWALIASES"
assert_contains "$(last_err)" "$ALIASES:2: target 2: invalid domain" \
    "newaliases error"
assert_not_contains "$(last_err; cat "$LOGFILE" 2>/dev/null)" secret \
    "stderr and log of newaliases"

section "an alias with nothing left"
fresh_list
as_user rm "$LIST"
as_user ln -s "$SECRET" "$LIST"
world empty "only: :include:$LIST
"
assert_contains "$(cat "$W/newaliases.err")" "$LIST is a symbolic link" "warning"
printf '%s' "$MSG" | assert_exit 64 "$SENDMAIL" -i only
assert_contains "$(last_err)" "alias only: no targets" "submission warning"
assert_contains "$(last_err)" "no recipients" "submission error"
assert_queue_empty "after mail to an alias with nothing left"
no_secret "alias with nothing left"

finish
