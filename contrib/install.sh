#!/bin/sh
# NAME
#	install.sh - install mxlane (what 'make install' runs)
# SYNOPSIS
#	sh contrib/install.sh DESTDIR SBINDIR BINDIR MANDIR SYSCONFDIR \
#	    SPOOLDIR GROUP BUILDDIR
# DESCRIPTION
#	Installs BUILDDIR/sendmail/sendmail as SBINDIR/sendmail with the
#	links BINDIR/mailq and BINDIR/newaliases, BUILDDIR/queuerun/queuerun
#	as SBINDIR/queuerun, the man pages under MANDIR/man{1,5,8}, and the
#	sample configuration as SYSCONFDIR/mxlane/mxlane.conf (with the
#	providers.conf it includes), or as mxlane.conf.sample beside it when
#	a configuration already exists
#	(an admin's file is never overwritten). Creates SPOOLDIR.
#	Every path is prefixed with DESTDIR (which may be empty).
#
#	The programs are first written under a temporary name in their
#	directory and then renamed into place, so that a host that is
#	sending mail never runs a half-copied or not-yet-setgid sendmail.
#
#	The privileged steps need root:
#	  - the system group GROUP (created with groupadd --system);
#	  - sendmail set-group-id GROUP, mode 2755 (like Postfix's postdrop,
#	    so every local user can submit into a spool they cannot read);
#	  - SPOOLDIR owned by root:GROUP, mode 02770.
#	Run by another user, the script installs the files, then lists the
#	steps it could not do and the commands that do them, and exits 0.
#	With a DESTDIR (a staging tree for a package or an image) the group
#	is not created on this host: that is the package's postinst's job;
#	ownership is still set when the group exists here.
# EXIT STATUS
#	0 when the files are installed (privileged steps may be left to
#	root, as reported); 64 on a usage error; 1 when a file could not
#	be installed.
set -eu

prog=install.sh

if [ $# -ne 8 ]; then
	echo "usage: sh contrib/install.sh DESTDIR SBINDIR BINDIR MANDIR" \
	    "SYSCONFDIR SPOOLDIR GROUP BUILDDIR" >&2
	exit 64
fi

destdir=$1
sbindir=$2
bindir=$3
mandir=$4
sysconfdir=$5
spooldir=$6
group=$7
builddir=$8

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
case $group in
'' | *[!A-Za-z0-9_-]*)
	echo "$prog: '$group' is not a valid group name" >&2
	exit 64 ;;
esac

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

# ---------------------------------------------------------------- group
have_group=no
if getent group "$group" >/dev/null 2>&1; then
	have_group=yes
elif [ "$root" = yes ] && [ -z "$destdir" ]; then
	if groupadd --system "$group"; then
		say "created the system group $group"
		have_group=yes
	else
		later "create the system group $group" \
		    "getent group $group >/dev/null || groupadd --system $group"
	fi
else
	later "create the system group $group" \
	    "getent group $group >/dev/null || groupadd --system $group"
fi

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
# group and mode, then rename over the old program in one step.
install_program() {
	tmp=$2/.$3.mxlane-new.$$
	rm -f "$tmp"
	install -m 0755 "$1" "$tmp" || die "cannot write $tmp"
	if [ "$4" = setgid ]; then
		if [ "$root" = yes ] && [ "$have_group" = yes ]; then
			# chgrp clears the setgid bit, so chmod comes after it.
			if ! { chgrp "$group" "$tmp" && chmod 2755 "$tmp"; }; then
				rm -f "$tmp"
				die "cannot make $2/$3 setgid $group"
			fi
		else
			later "make $sbindir/sendmail setgid $group (mode 2755)" \
			    "chgrp $group $sbindir/sendmail && chmod 2755 $sbindir/sendmail"
		fi
	fi
	mv -f "$tmp" "$2/$3" || { rm -f "$tmp"; die "cannot install $2/$3"; }
	say "installed $2/$3"
}

install_program "$sendmail_bin" "$d_sbin" sendmail setgid
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
# The sample includes providers.conf: it must be there too, or every
# program would stop at the include. An admin's copy is kept.
if [ -e "$d_conf/providers.conf" ]; then
	install -m 0644 "$src/conf/providers.conf" \
	    "$d_conf/providers.conf.sample"
	say "kept $d_conf/providers.conf; the new one is providers.conf.sample"
else
	install -m 0644 "$src/conf/providers.conf" "$d_conf/providers.conf"
	say "installed $d_conf/providers.conf"
fi

# ---------------------------------------------------------------- spool
install -d "$d_spool" || die "cannot create $d_spool"
if [ "$root" = yes ] && [ "$have_group" = yes ]; then
	if ! { chown "root:$group" "$d_spool" && chmod 02770 "$d_spool"; }; then
		die "cannot set the owner and mode of $d_spool"
	fi
	say "spool $d_spool: root:$group, mode 02770"
else
	# Usable by this user meanwhile; root finishes the job.
	chmod 02770 "$d_spool" 2>/dev/null || chmod 0770 "$d_spool" || true
	later "give $spooldir to root:$group, mode 02770" \
	    "chown root:$group $spooldir && chmod 02770 $spooldir"
fi

# --------------------------------------------------------------- report
if [ -n "$todo" ]; then
	if [ "$root" = yes ]; then
		why="the group $group does not exist on this host"
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
	say "until then only users who can write the spool can submit mail."
fi
exit 0
