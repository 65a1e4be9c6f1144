#!/bin/sh
# NAME
#	install.sh - install mxlane (what 'make install' runs)
# SYNOPSIS
#	sh contrib/install.sh DESTDIR SBINDIR BINDIR MANDIR SYSCONFDIR \
#	    SPOOLDIR USER GROUP BUILDDIR
# DESCRIPTION
#	Installs BUILDDIR/sendmail/sendmail as SBINDIR/sendmail with the
#	links BINDIR/mailq and BINDIR/newaliases, BUILDDIR/queuerun/queuerun
#	as SBINDIR/queuerun, the man pages under MANDIR/man{1,5,8}, the
#	Nagios/Icinga plugin and the Grafana dashboard as
#	MANDIR/../mxlane/check_mxlane and .../grafana/mxlane.json, and the
#	sample configuration as SYSCONFDIR/mxlane/mxlane.conf (with the
#	providers.conf and replies.conf it includes), or as
#	mxlane.conf.sample beside it when
#	a configuration already exists
#	(an admin's file is never overwritten). Creates SPOOLDIR.
#	USER and GROUP are the mail system's own account (default mxlane):
#	it owns the spool and runs the queue runner.
#	Every path is prefixed with DESTDIR (which may be empty).
#
#	The programs are first written under a temporary name in their
#	directory and then renamed into place, so that a host that is
#	sending mail never runs a half-copied or not-yet-set-id sendmail.
#
#	The privileged steps need root:
#	  - the system group GROUP and the system user USER (no login
#	    shell, home SPOOLDIR, not created);
#	  - sendmail owned by USER:GROUP, set-user-id and set-group-id,
#	    mode 6755 (it drops the caller's ids at once: see INSTALL);
#	  - SPOOLDIR owned by USER:GROUP, mode 0700, and everything in it
#	    given to USER (a spool of an older install was root:GROUP
#	    02770 with files of many owners).
#	Run by another user, the script installs the files, then lists the
#	steps it could not do and the commands that do them, and exits 0.
#	With a DESTDIR (a staging tree for a package or an image) nothing
#	is created on this host: the steps are listed for the package's
#	post-install script (postinst).
# EXIT STATUS
#	0 when the files are installed (privileged steps may be left to
#	root, as reported); 64 on a usage error; 1 when a file could not
#	be installed.
set -eu

prog=install.sh

if [ $# -ne 9 ]; then
	echo "usage: sh contrib/install.sh DESTDIR SBINDIR BINDIR MANDIR" \
	    "SYSCONFDIR SPOOLDIR USER GROUP BUILDDIR" >&2
	exit 64
fi

destdir=$1
sbindir=$2
bindir=$3
mandir=$4
sysconfdir=$5
spooldir=$6
user=$7
group=$8
builddir=$9

src=$(cd "$(dirname "$0")/.." && pwd)

say() {
	echo "$prog: $*"
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

for path in "$sbindir" "$bindir" "$mandir" "$sysconfdir" "$spooldir"; do
	case $path in
	/*) ;;
	*) echo "$prog: $path: not an absolute path" >&2; exit 64 ;;
	esac
done
for name in "$user" "$group"; do
	case $name in
	'' | root | -* | *[!A-Za-z0-9_-]*)
		echo "$prog: '$name' is not a valid account name for the" \
		    "mail system" >&2
		exit 64 ;;
	esac
done

sendmail_bin=$builddir/sendmail/sendmail
queuerun_bin=$builddir/queuerun/queuerun
for f in "$sendmail_bin" "$queuerun_bin"; do
	if [ ! -f "$f" ] || [ ! -x "$f" ]; then
		die "$f is missing: run 'make' first"
	fi
done

if [ "$(id -u)" -eq 0 ]; then
	root=yes
else
	root=no
fi

# Steps left undone, as lines "what|command", reported at the end.
todo=

later() {
	todo="$todo$1|$2
"
}

# ------------------------------------------------------------- accounts
# Created on this host only for a real install by root; a staging tree
# (DESTDIR) leaves them to the package's postinst.
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/bin/false
make_accounts=no
[ "$root" = yes ] && [ -z "$destdir" ] && make_accounts=yes
cmd_group="getent group $group >/dev/null || groupadd --system $group"
cmd_user="getent passwd $user >/dev/null || useradd --system --gid $group --home-dir $spooldir --no-create-home --shell $nologin --comment 'mxlane mail system' $user"
if getent group "$group" >/dev/null 2>&1; then
	:
elif [ "$make_accounts" = yes ] && groupadd --system "$group"; then
	say "created the system group $group"
else
	later "create the system group $group" "$cmd_group"
fi
if getent passwd "$user" >/dev/null 2>&1; then
	:
elif [ "$make_accounts" = yes ] && getent group "$group" >/dev/null &&
    useradd --system --gid "$group" --home-dir "$spooldir" \
    --no-create-home --shell "$nologin" --comment "mxlane mail system" \
    "$user"; then
	say "created the system user $user"
else
	later "create the system user $user (no login shell)" "$cmd_user"
fi
have_accounts=no
if getent group "$group" >/dev/null 2>&1 &&
    getent passwd "$user" >/dev/null 2>&1; then
	have_accounts=yes
fi
# Owners are set here when this is a real install, or a staging tree on
# a host that has the accounts (then they carry into the package).
set_owners=no
[ "$root" = yes ] && [ "$have_accounts" = yes ] && set_owners=yes

# ---------------------------------------------------------- directories
d_sbin=$destdir$sbindir
d_bin=$destdir$bindir
d_man=$destdir$mandir
d_conf=$destdir$sysconfdir/mxlane
d_spool=$destdir$spooldir

install -d -m 0755 "$d_sbin" "$d_bin" "$d_man/man1" "$d_man/man5" \
    "$d_man/man8" "$d_conf" || die "cannot create the directories"

# ------------------------------------------------------------- programs

# A package's own /usr/sbin/sendmail (Postfix's, Exim's) comes back with
# that package's next upgrade unless it is diverted; see INSTALL.
if [ -z "$destdir" ] && [ -e "$sbindir/sendmail" ] &&
    command -v dpkg-query >/dev/null 2>&1 &&
    owner=$(dpkg-query -S "$sbindir/sendmail" 2>/dev/null); then
	diverted=$(dpkg-divert --listpackage "$sbindir/sendmail" 2>/dev/null ||
	    true)
	if [ -z "$diverted" ]; then
		say "warning: replacing $sbindir/sendmail of package" \
		    "'${owner%%:*}'; its next upgrade will put it back."
		say "warning: divert it first (see INSTALL):" \
		    "dpkg-divert --local --rename --add $sbindir/sendmail"
	fi
fi

# install_program SRC DIR NAME MODE: copy under a temporary name, set
# owner and mode, then rename over the old program in one step.
install_program() {
	tmp=$2/.$3.mxlane-new.$$
	rm -f "$tmp"
	install -m 0755 "$1" "$tmp" || die "cannot write $tmp"
	if [ "$4" = setid ]; then
		if [ "$set_owners" = yes ]; then
			# chown clears the set-id bits, so chmod comes after it.
			if ! { chown "$user:$group" "$tmp" &&
			    chmod 6755 "$tmp"; }; then
				rm -f "$tmp"
				die "cannot make $2/$3 set-id $user:$group"
			fi
		else
			later "make $sbindir/sendmail set-id $user:$group (mode 6755)" \
			    "chown $user:$group $sbindir/sendmail && chmod 6755 $sbindir/sendmail"
		fi
	elif [ "$root" = yes ]; then
		chown root:root "$tmp" 2>/dev/null || true
	fi
	mv -f "$tmp" "$2/$3" || { rm -f "$tmp"; die "cannot install $2/$3"; }
	say "installed $2/$3"
}

install_program "$sendmail_bin" "$d_sbin" sendmail setid
install_program "$queuerun_bin" "$d_sbin" queuerun plain

# mailq and newaliases are sendmail under other names. The link is
# relative (../sbin/sendmail) when bin and sbin are siblings, so that it
# stays right inside a DESTDIR tree or a chroot.
if [ "$(dirname "$bindir")" = "$(dirname "$sbindir")" ]; then
	target=../$(basename "$sbindir")/sendmail
else
	target=$sbindir/sendmail
fi
for name in mailq newaliases; do
	ln -sfn "$target" "$d_bin/$name" || die "cannot link $d_bin/$name"
	say "linked $d_bin/$name -> $target"
done

# ------------------------------------------------------------ man pages
for page in "$src"/man/*.[158]; do
	[ -f "$page" ] || continue
	section=${page##*.}
	install -m 0644 "$page" "$d_man/man$section/" ||
	    die "cannot install $page"
done
say "installed the man pages in $d_man"

# -------------------------------------------------- monitoring add-ons
# Beside the man pages' share directory (MANDIR/..): the Nagios/Icinga
# plugin and the Grafana dashboard, for the admin to link or import.
d_share=$destdir$(dirname "$mandir")/mxlane
install -d -m 0755 "$d_share/grafana" &&
    install -m 0755 "$src/contrib/check_mxlane" "$d_share/check_mxlane" &&
    install -m 0644 "$src/contrib/grafana/mxlane.json" \
	"$d_share/grafana/mxlane.json" ||
    die "cannot install the monitoring add-ons in $d_share"
say "installed check_mxlane and grafana/mxlane.json in $d_share"

# -------------------------------------------------------- configuration
# The sample names the default spool; point it at the one we create.
sample=$(mktemp "${TMPDIR:-/tmp}/mxlane.conf.XXXXXX")
trap 'rm -f "$sample"' EXIT
sed "s|^spool_directory = .*|spool_directory = \"$spooldir\"|" \
    "$src/conf/mxlane.conf" >"$sample"
if [ -e "$d_conf/mxlane.conf" ]; then
	install -m 0644 "$sample" "$d_conf/mxlane.conf.sample"
	say "kept $d_conf/mxlane.conf; the new sample is mxlane.conf.sample"
else
	install -m 0644 "$sample" "$d_conf/mxlane.conf"
	say "installed $d_conf/mxlane.conf"
fi
# The sample includes providers.conf and replies.conf: they must be
# there too, or every program would stop at the include. An admin's
# copy is kept.
for inc in providers.conf replies.conf; do
	if [ -e "$d_conf/$inc" ]; then
		install -m 0644 "$src/conf/$inc" "$d_conf/$inc.sample"
		say "kept $d_conf/$inc; the new one is $inc.sample"
	else
		install -m 0644 "$src/conf/$inc" "$d_conf/$inc"
		say "installed $d_conf/$inc"
	fi
done

# ----------------------------------------------------------------- DKIM
# Where "queuerun dkim keygen" writes private keys, as the mail system's
# account, which signs with them: its own, and nobody else's.
install -d -m 0700 "$d_conf/dkim" || die "cannot create $d_conf/dkim"
if [ "$set_owners" = yes ]; then
	chown "$user:$group" "$d_conf/dkim" ||
	    die "cannot set the owner of $d_conf/dkim"
else
	later "give $sysconfdir/mxlane/dkim to $user:$group, mode 0700" \
	    "chown $user:$group $sysconfdir/mxlane/dkim && chmod 0700 $sysconfdir/mxlane/dkim"
fi

# ---------------------------------------------------------------- spool
# The spool is the mail system's alone (0700): nobody else, root
# included, ever works inside it (see INSTALL, "Who runs what").
cmd_spool="chown -hR $user:$group $spooldir && chmod 0700 $spooldir && find $spooldir -mindepth 1 -type d -exec chmod 0700 {} + && find $spooldir -type f -exec chmod 0600 {} +"
install -d -m 0700 "$d_spool" || die "cannot create $d_spool"
if [ "$set_owners" = yes ]; then
	# -h: a symlink planted in an old, group-writable spool is changed
	# itself, never what it points at; find -type f skips symlinks.
	if ! { chown -hR "$user:$group" "$d_spool" &&
	    chmod 0700 "$d_spool" &&
	    find "$d_spool" -mindepth 1 -type d -exec chmod 0700 {} + &&
	    find "$d_spool" -type f -exec chmod 0600 {} +; }; then
		die "cannot set the owner and mode of $d_spool"
	fi
	say "spool $d_spool: $user:$group, mode 0700"
else
	chmod 0700 "$d_spool" 2>/dev/null || true
	later "give $spooldir to $user:$group, mode 0700" "$cmd_spool"
fi

# --------------------------------------------------------------- report
if [ -n "$todo" ]; then
	if [ -n "$destdir" ]; then
		why="a staging tree (DESTDIR): the package's postinst must do them"
	elif [ "$root" = yes ]; then
		why="the accounts $user/$group could not be created"
	else
		why="not running as root"
	fi
	echo
	say "the files are installed, but these steps were NOT done ($why):"
	printf '%s' "$todo" | while IFS='|' read -r what cmd; do
		echo "  - $what"
	done
	echo
	if [ -n "$destdir" ]; then
		say "on the target system, as root, run:"
	else
		say "to finish, run as root:"
	fi
	printf '%s' "$todo" | while IFS='|' read -r what cmd; do
		echo "  $cmd"
	done
	echo
	say "until then only the spool's owner can submit mail."
fi
exit 0
