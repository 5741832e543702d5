#!/bin/sh
# Makes a small demo library of tagged tracks with ffmpeg: three albums in
# several formats, non-ASCII names, embedded covers, a two-disc album.
# usage: demo-library.sh DIR
set -eu
dir=$1
[ -f "$dir/.complete" ] && exit 0
mkdir -p "$dir"

# An album cover per album, made once.
ffmpeg -nostdin -loglevel error -y -f lavfi -i "mandelbrot=s=320x320" -frames:v 1 "$dir/.cover1.jpg"
ffmpeg -nostdin -loglevel error -y -f lavfi \
	-i "gradients=s=320x320:c0=0x7722aa:c1=0xffaa00:seed=3" -frames:v 1 "$dir/.cover2.jpg"

# track FILE CODEC SECONDS FREQ COVER(a file or no) TAGS...
track() {
	out=$1 codec=$2 secs=$3 freq=$4 cover=$5
	shift 5
	# The remaining arguments become -metadata options, spaces kept.
	for kv in "$@"; do
		set -- "$@" -metadata "$kv"
		shift
	done
	tone="0.25*sin(2*PI*$freq*t)*(0.6+0.4*sin(2*PI*0.5*t))+0.12*sin(2*PI*$freq*1.5*t)+0.08*sin(2*PI*$freq*2*t)"
	if [ "$cover" != no ]; then
		ffmpeg -nostdin -loglevel error -y -f lavfi -i "aevalsrc=$tone:s=44100:d=$secs" \
			-i "$cover" -map 0:a -map 1:v -c:v copy -disposition:v attached_pic \
			-c:a "$codec" "$@" "$out"
	else
		ffmpeg -nostdin -loglevel error -y -f lavfi -i "aevalsrc=$tone:s=44100:d=$secs" \
			-c:a "$codec" "$@" "$out"
	fi
}

a="$dir/Sigur Rós - Ágætis byrjun"
mkdir -p "$a"
n=1
for t in "Svefn-g-englar:220" "Starálfur:247" "Flugufrelsarinn:262" "Ný batterí:294"; do
	track "$a/0$n.mp3" libmp3lame 40 "${t#*:}" "$dir/.cover1.jpg" "title=${t%%:*}" "artist=Sigur Rós" \
		"album=Ágætis byrjun" "date=1999" "genre=Post-rock" "track=$n/4" \
		"publisher=Smekkleysa" "TSRC=ISXXX99000$n"
	n=$((n + 1))
done

a="$dir/Beyoncé - Live"
mkdir -p "$a"
n=1
for t in "Crazy in Love:330" "Halo:349" "Formation:392"; do
	track "$a/0$n.flac" flac 35 "${t#*:}" "$dir/.cover2.jpg" "title=${t%%:*}" "artist=Beyoncé" \
		"album=Live in Demo" "date=2016" "genre=R&B" "track=$n" "ISRC=USSM1600$n"
	n=$((n + 1))
done

a="$dir/東京の夜"
mkdir -p "$a/CD1" "$a/CD2"
track "$a/CD1/01.ogg" libvorbis 30 440 no "title=東京の夜" "artist=夜の街" "album=東京の夜" \
	"date=2021" "track=1" "disc=1/2"
track "$a/CD1/02.opus" libopus 30 494 no "title=新宿" "artist=夜の街" "album=東京の夜" \
	"date=2021" "track=2" "disc=1/2"
track "$a/CD2/01.m4a" aac 30 523 no "title=渋谷" "artist=夜の街" "album=東京の夜" \
	"date=2021" "track=1" "disc=2/2"
track "$a/CD2/02.wav" pcm_s16le 20 587 no "title=Epilogue" "artist=夜の街" "album=東京の夜"
touch "$dir/.complete"
