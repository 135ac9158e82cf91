#!/bin/sh
# Runs experiment files one after another with N threads, logging start/end times to logs/chain.log.
# usage: scripts/chain_session.sh THREADS NAME...   (NAME = experiments/NAME.yaml; THREADS 0 = the file's own)
set -u
threads=$1; shift
opt=""; [ "$threads" != 0 ] && opt="--threads $threads"
mkdir -p logs
for f in "$@"; do
    echo "$(date -u +%FT%TZ) start $f threads=$threads" >> logs/chain.log
    build/temper run "experiments/$f.yaml" $opt > "logs/$f.out" 2> "logs/$f.err"
    echo "$(date -u +%FT%TZ) end $f rc=$?" >> logs/chain.log
done
