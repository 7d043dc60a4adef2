/* jobspec.h - the pure half of media jobs (docs/jobs.md): what a client
 * asks for, what yt-dlp, ffprobe and ffmpeg print, and the ffmpeg command
 * lines built from it.  Buffers and JSON in, structs and argv out; no I/O,
 * no process, no Redis.  Everything here reads hostile input (a client's
 * request body; the output of programs run on a hostile page or file), so
 * every parser has caps and a fuzz target (tests/fuzz/fuzz_jobspec.c).
 *
 * The worker (worker/) runs the programs with these argv arrays; the jobs
 * executable (fcgi/jobs/) validates requests with these parsers before it
 * queues anything, so a task in the queue is always one the worker can
 * run.
 */
#ifndef MR_JOBSPEC_H
#define MR_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;
struct mr_arena;

#define MR_JOBS_MAX_SECONDS     (7.0 * 86400)  /* any time or duration */
#define MR_JOBS_MIN_DIM         16             /* resize bounds, pixels */
#define MR_JOBS_MAX_WIDTH       7680
#define MR_JOBS_MAX_HEIGHT      4320
#define MR_JOBS_MAX_FPS         240.0
#define MR_JOBS_MAX_FORMAT_ID   128            /* yt-dlp format selector */
#define MR_JOBS_MAX_SUB_LANGS   20
#define MR_JOBS_MAX_LANG        32
#define MR_JOBS_MAX_NAME        120            /* a result's base name, bytes */
#define MR_JOBS_MAX_FORMATS     300            /* formats kept by analyze */
#define MR_JOBS_MAX_STRING      1024           /* any string kept from JSON */
#define MR_JOBS_JSON_DEPTH      32
#define MR_JOBS_MAX_ARGS        96             /* one command line */
#define MR_JOBS_MAX_LINE        4096           /* a progress line; longer: ignored */

/* ---- times ---------------------------------------------------------------- */

/* A time or duration: a JSON number of seconds (>= 0), or a string
 * "SS", "SS.mmm", "MM:SS(.mmm)" or "HH:MM:SS(.mmm)" (minutes and seconds
 * below 60 when a larger unit is given; at most 3 decimals).  At most
 * MR_JOBS_MAX_SECONDS.  0 on success, -1 otherwise. */
int mr_jobs_time(struct json_object *v, double *out);

/* ---- operations (POST /api/process) --------------------------------------- */

enum mr_jobs_format {
    MR_FMT_DEFAULT = 0,    /* mp4, or m4a when audio_only */
    MR_FMT_MP4, MR_FMT_WEBM, MR_FMT_MKV, MR_FMT_MP3, MR_FMT_M4A, MR_FMT_HLS,
};

struct mr_jobs_ops {
    bool trim;
    double start;          /* seconds */
    double duration;       /* seconds; < 0: to the end of the input */
    bool exact;            /* trim.exact (default true): cut within a frame
                              by re-encoding; false: copy streams and cut on
                              the keyframe at or before start */
    long width, height;    /* resize: 0 keeps it (the aspect ratio kept);
                              both 0: no resize.  Rounded down to even. */
    int crf;               /* quality: 0-51, -1 when not set */
    double fps;            /* 0: keep */
    enum mr_jobs_format format;
    bool audio_only;       /* also implied by mp3 and m4a */
    bool thumbnail;
    double thumbnail_at;   /* seconds into the result; < 0: its tenth */
};

/* Parses `operations` (a JSON object) into *out.  Keys: trim {start,
 * duration | end, exact}, resize {width, height}, quality (CRF 0-51), fps,
 * format ("mp4", "webm", "mkv", "mp3", "m4a", "hls"), audio_only (bool),
 * thumbnail (true, a time, or {"at": time}).  An unknown key, a wrong type,
 * a value out of range, end <= start, a duration of 0, audio_only (or mp3,
 * m4a) with resize, fps or quality, and an object with nothing to do are
 * errors (webm with audio_only is Opus audio in WebM).
 * 0 on success; -1 with `field` set to the offending field's path
 * ("operations.trim.end") and `msg` to one line saying what is accepted. */
int mr_jobs_ops_parse(struct json_object *ops, struct mr_jobs_ops *out,
                      char *field, size_t fieldlen, char *msg, size_t msglen);

/* The ops as canonical JSON (every field; null for a format or quality
 * not given, a trim's end as its duration), for the task record and the
 * worker: parse(to_json(x)) == x. */
struct json_object *mr_jobs_ops_to_json(const struct mr_jobs_ops *ops);

/* ---- ffprobe -------------------------------------------------------------- */

struct mr_jobs_probe {
    double duration;       /* seconds; 0 unknown */
    bool has_video;        /* a video stream that is not an attached picture */
    bool has_audio;
    char vcodec[32];       /* codec_name, "" when none */
    char acodec[32];
    long width, height;
    double fps;            /* avg_frame_rate (r_frame_rate when 0/0) */
};

/* Reads `ffprobe -v error -print_format json -show_format -show_streams`
 * output.  0 on success; -1 when it is not JSON of that shape or has
 * neither video nor audio (msg says which). */
int mr_jobs_probe_parse(const char *json, size_t len, struct mr_jobs_probe *out,
                        char *msg, size_t msglen);

/* ---- the ffmpeg command lines --------------------------------------------- */

struct mr_jobs_argv {
    const char *v[MR_JOBS_MAX_ARGS + 1];   /* NULL-terminated */
    size_t n;
};

struct mr_jobs_plan {
    struct mr_jobs_argv main;      /* n == 0 when only a thumbnail is asked */
    struct mr_jobs_argv thumb;     /* n == 0 without thumbnail */
    const char *output;            /* the result's file name (in dir):
                                      "<base>.mp4", "index.m3u8", or the
                                      thumbnail's "<base>.jpg" */
    const char *thumb_output;      /* "<base>.jpg" or NULL */
    double expect_s;               /* the result's duration, for progress */
    bool copy_video, copy_audio;   /* streams copied, not re-encoded */
};

/* Builds the commands for ops on an input that probed as *in: `ffmpeg
 * -hide_banner -nostdin -y -loglevel error -nostats -progress pipe:1
 * -protocol_whitelist file [-ss S] -i INPUT ... -fs MAX_BYTES OUTPUT`, every
 * value from a validated number or a fixed list, streams copied when the
 * operations and the container allow it (see docs/jobs.md), files in `dir`
 * named from `base` (a name from mr_jobs_safe_name).  Strings live in the
 * arena.  0 on success; -1 with msg set when the input cannot give what is
 * asked (a trim that starts past its end, audio from an input without
 * audio, a resize of an input without video). */
int mr_jobs_plan(struct mr_arena *a, const struct mr_jobs_ops *ops,
                 const struct mr_jobs_probe *in, const char *ffmpeg, const char *input,
                 const char *dir, const char *base, long long max_bytes,
                 struct mr_jobs_plan *out, char *msg, size_t msglen);

/* ---- progress ------------------------------------------------------------- */

/* The --progress-template and --print arguments the worker gives yt-dlp, so
 * that mr_jobs_ytdlp_line reads what it prints. */
#define MR_JOBS_YTDLP_PROGRESS \
    "download:[mr-progress] %(progress.status)s %(progress.downloaded_bytes)s " \
    "%(progress.total_bytes)s %(progress.total_bytes_estimate)s %(progress.speed)s " \
    "%(progress.eta)s %(progress.fragment_index)s %(progress.fragment_count)s"
#define MR_JOBS_YTDLP_PRINT_TITLE   "before_dl:[mr-title] %(title)j"
#define MR_JOBS_YTDLP_PRINT_FORMATS "before_dl:[mr-formats] %(requested_formats.:.format_id)j"
#define MR_JOBS_YTDLP_PRINT_FILE    "after_move:[mr-file] %(filepath)j"

enum mr_jobs_line {
    MR_LINE_OTHER = 0,     /* anything else (ignored) */
    MR_LINE_PROGRESS,      /* [mr-progress] */
    MR_LINE_TITLE,         /* [mr-title] "..." */
    MR_LINE_FORMATS,       /* [mr-formats] ["137","140"] or NA */
    MR_LINE_FILE,          /* [mr-file] "/path" */
};

struct mr_jobs_ytdlp_event {
    enum mr_jobs_line kind;
    /* MR_LINE_PROGRESS; -1 for a field yt-dlp printed as NA */
    bool finished;         /* status "finished" */
    long long bytes, total;   /* total: total_bytes, else its estimate */
    double speed;          /* bytes/s */
    long long eta_s;
    long long frag_index, frag_count;
    /* MR_LINE_TITLE, MR_LINE_FILE: the string, NUL-terminated, in text */
    char text[MR_JOBS_MAX_STRING + 1];
    /* MR_LINE_FORMATS: how many formats are downloaded (1 when NA) */
    int nformats;
};

/* Classifies one line of yt-dlp's output (without its newline) and reads
 * it.  Malformed lines of a known kind are MR_LINE_OTHER. */
enum mr_jobs_line mr_jobs_ytdlp_line(const char *line, size_t n, struct mr_jobs_ytdlp_event *ev);

/* ffmpeg's -progress output: blocks of key=value lines, each ending with
 * progress=continue or progress=end. */
struct mr_jobs_ffmpeg_progress {
    long long out_us;      /* out_time_us (out_time_ms, which is also
                              microseconds, when absent); -1 unknown */
    long long size;        /* total_size; -1 unknown */
    double speed;          /* "1.5x" -> 1.5; 0 unknown */
    bool end;              /* progress=end */
};

/* Feeds one line.  Returns 1 when the line ended a block (progress=...),
 * *p then holds that block's values; 0 otherwise. */
int mr_jobs_ffmpeg_line(const char *line, size_t n, struct mr_jobs_ffmpeg_progress *p);

/* ---- analyze (POST /api/analyze) ------------------------------------------ */

/* Maps yt-dlp's --dump-single-json output to the analyze answer: {title,
 * duration, thumbnail, uploader, webpage_url, formats: [{format_id,
 * format_note, width, height, fps, ext, filesize, vcodec, acodec, tbr}],
 * subtitles: [langs]}; absent or wrongly typed fields are null, strings are
 * valid UTF-8 of at most MR_JOBS_MAX_STRING bytes, URLs http(s) only, at
 * most MR_JOBS_MAX_FORMATS formats.  *out is a new object the caller puts.
 * 0 on success; -1 with msg set when it is not yt-dlp's JSON (a playlist
 * is not: msg says so). */
int mr_jobs_analyze_map(const char *json, size_t len, struct json_object **out,
                        char *msg, size_t msglen);

/* ---- download requests and names ------------------------------------------ */

/* A yt-dlp format selector a client may send: 1 to MR_JOBS_MAX_FORMAT_ID
 * bytes of letters, digits and _ . , : + / * ? ! = < > ( ) [ ] -, not starting with '-'. */
bool mr_jobs_format_id_ok(const char *s);

/* A subtitle language: 1 to MR_JOBS_MAX_LANG bytes of [A-Za-z0-9_-], or
 * "all". */
bool mr_jobs_lang_ok(const char *s);

/* A file name from a title: valid UTF-8 (a bad byte becomes '_'), no
 * control character, none of / \ : * ? " < > |, no leading '.', '-' or
 * space, no trailing '.' or space, at most MR_JOBS_MAX_NAME bytes (cut on a
 * character boundary); "media" when nothing is left.  Writes it to out
 * (outlen > MR_JOBS_MAX_NAME) and returns its length. */
size_t mr_jobs_safe_name(const char *title, size_t n, char *out, size_t outlen);

/* A Content-Disposition value for a file name (a mr_jobs_safe_name one):
 * attachment; filename="<ASCII, other bytes as '_'>";
 * filename*=UTF-8''<percent-encoded> (RFC 6266, RFC 8187).  0, or -1 when
 * it does not fit. */
int mr_jobs_content_disposition(const char *name, char *out, size_t outlen);

#endif
