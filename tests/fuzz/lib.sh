# shellcheck shell=bash disable=SC2154,SC2089,SC2090,SC2086
# tests/fuzz/lib.sh - what tests/fuzz/run (CI's bounded runs) and
# tests/fuzz/campaign (the long runs) share: building the targets and the
# inputs each one starts from.  Sourced, with $here (this folder), $src (the
# source tree) and $out (the build folder) set.

pkgs="fcgi libcurl hiredis json-c libxml-2.0 libcrypto"
fuzz_cflags="$(pkg-config --cflags $pkgs) -iquote $src/common -iquote $src -D_GNU_SOURCE -DPACKAGE_VERSION=\"fuzz\" -g -O1"
fuzz_libs="$(pkg-config --libs $pkgs) -pthread"
fuzz_san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

# The targets, by name ("m3u8" for fuzz_m3u8.c).
fuzz_targets() {
    local f
    for f in "$here"/fuzz_*.c; do
        f=$(basename "$f" .c); echo "${f#fuzz_}"
    done
}

# The object fuzz_build_lib makes of a source file: DIR_NAME.o, DIR its
# folder (a layer of common/, providers, fcgi), NAME the file's.
fuzz_obj() {
    echo "$(basename "$(dirname "$1")")_$(basename "$1" .c).o"
}

# Compiles the library once (coverage instrumented, not linked with
# libFuzzer's main) into $out/lib, two files at a time; each target then
# only compiles its own file and links.
fuzz_build_lib() {
    local newest o f want
    mkdir -p "$out/lib"
    # Every object in $out/lib is linked in: drop those whose source is gone
    # (a file moved to another layer, renamed or removed), which would clash
    # with the new ones or link in dead code.
    want=$(for f in "$src"/common/*/*.c "$src"/providers/*.c "$src"/fcgi/*.c; do
               fuzz_obj "$f"; done)
    for o in "$out"/lib/*.o; do
        [ -e "$o" ] || continue
        grep -qxF "$(basename "$o")" <<<"$want" || rm -f "$o"
    done
    # An object is remade when its source or any header is newer.
    # shellcheck disable=SC2012  # our own file names
    newest=$(ls -t "$src"/common/*/*.h "$src"/providers/*.h | head -n 1)
    # shellcheck disable=SC2016  # the inner shell expands them
    printf '%s\n' "$src"/common/*/*.c "$src"/providers/*.c | \
        FUZZ_CC_ARGS="$fuzz_san -fsanitize=fuzzer-no-link $fuzz_cflags" FUZZ_OUT="$out/lib" \
        FUZZ_NEWEST_H="$newest" xargs -P"${FUZZ_JOBS:-2}" -I{} sh -c \
            'o="$FUZZ_OUT/$(basename "$(dirname "$1")")_$(basename "$1" .c).o";
             { [ "$o" -nt "$1" ] && [ "$o" -nt "$FUZZ_NEWEST_H" ]; } || clang $FUZZ_CC_ARGS -c "$1" -o "$o"' sh {}
    fuzz_build_apps
}

# The executables' route tables, for fuzz_request: each fcgi/NAME.c with
# its main() renamed and its app exported as mr_fuzz_app_NAME (in
# $out/lib/fcgi_NAME.o: common/app's objects are app_*.o).
fuzz_build_apps() {
    local f n
    for f in "$src"/fcgi/*.c; do
        n=$(basename "$f" .c)
        # shellcheck disable=SC2086
        printf '#define main mr_fuzz_main_%s\n#include "%s"\n#undef main\n%s\n' \
            "$n" "$f" "const struct mr_app *mr_fuzz_app_$n = &app;" | \
            clang $fuzz_san -fsanitize=fuzzer-no-link $fuzz_cflags -x c -c - \
                -o "$out/lib/$(fuzz_obj "$f")"
    done
}

# fuzz_build TARGET: $out/fuzz_TARGET.
fuzz_build() {
    # shellcheck disable=SC2086
    clang -fsanitize=fuzzer $fuzz_san $fuzz_cflags "$here/fuzz_$1.c" "$out"/lib/*.o \
        -o "$out/fuzz_$1" $fuzz_libs
}

# fuzz_extra TARGET: the project's own fixtures a target also reads (the
# HLS and DASH corpus), one folder a line.
fuzz_extra() {
    case $1 in
        m3u8) echo "$src/tests/corpus/hls"; echo "$src/tests/data/m3u8" ;;
        mpd) echo "$src/tests/corpus/dash" ;;
    esac
}

# fuzz_dict TARGET: "-dict=FILE" when the target has a dictionary.
fuzz_dict() {
    [ -f "$here/dict/$1.dict" ] && echo "-dict=$here/dict/$1.dict"
    return 0
}
