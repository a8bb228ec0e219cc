/* agent.c - pulumi-state-agent: the deploy agent daemon.
 *
 * DESIGN
 * ------
 * One process waits on LISTEN (lib/notify.c) for queued deployments and cancels, with a short poll
 * that covers lost notifications. It claims with FOR UPDATE SKIP LOCKED (lib/deploy.c; a partial
 * unique index keeps one running deployment per stack whatever the races between agents) and runs
 * each claimed deployment in a runner: a forked child with its own database connection, which
 * mints a token for the deployment (write, scoped to the stack, expiring), makes a fresh temporary
 * directory, and runs the steps as child process groups: `git clone`, the pre-run commands, then
 * `pulumi <op>` against this same backend. Output goes into the log table line by line as it comes.
 * The runner heartbeats; a cancel (or SIGTERM) sends SIGINT to the step's process group, then
 * SIGTERM, then SIGKILL. The agent also fails deployments whose agent died and sweeps expired
 * leases, under an advisory lock so one agent does it at a time.
 *
 * The child's environment is built from nothing: the variables named by agent_pass_env, the ones
 * Pulumi Deployments sets, then the user's. The agent's database settings and master key never
 * reach it; git credentials travel in the environment (GIT_CONFIG_*), never on a command line.
 */
#define _GNU_SOURCE 1 /* pipe2, posix_spawn_file_actions_addchdir_np, nftw */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "deploy.h"
#include "notify.h"
#include "retention.h"
#include "token.h"
#include "update.h"
#include "util.h"

extern char **environ;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* ---- the environment of a step ---- */

typedef struct Env {
    char **v;
    int n, cap;
} Env;

static void env_set(Env *e, const char *name, const char *value)
{
    size_t nl = strlen(name);
    for (int i = 0; i < e->n; i++)
        if (!strncmp(e->v[i], name, nl) && e->v[i][nl] == '=') {
            free(e->v[i]);
            e->v[i] = xasprintf("%s=%s", name, value);
            return;
        }
    if (e->n + 2 > e->cap) {
        e->cap = e->cap ? 2 * e->cap : 32;
        e->v = xrealloc(e->v, (size_t)e->cap * sizeof(char *));
    }
    e->v[e->n++] = xasprintf("%s=%s", name, value);
    e->v[e->n] = NULL;
}

static void env_free(Env *e)
{
    for (int i = 0; i < e->n; i++) {
        OPENSSL_cleanse(e->v[i], strlen(e->v[i]));
        free(e->v[i]);
    }
    free(e->v);
}

/* ---- the runner ---- */

typedef struct Runner {
    const Config *cfg;
    Db *db;
    DeployJob *job;
    const char *agent;
    long long line; /* last log line number written */
    bool cancel;    /* a cancel was asked for (or the agent is stopping) */
    bool truncated;
    double last_beat;
    double deadline;
    char *pending[64]; /* lines not yet written */
    const char *pheads[64];
    int npending;
} Runner;

static void flush_log(Runner *r)
{
    if (!r->npending)
        return;
    if (!deploy_log_append(r->db, r->job->id, r->line + 1, r->npending, r->pheads, (const char *const *)r->pending))
        log_warn("could not write %d log lines", r->npending);
    r->line += r->npending;
    for (int i = 0; i < r->npending; i++) {
        free(r->pending[i]);
        free((char *)r->pheads[i]);
    }
    r->npending = 0;
}

static void log_line(Runner *r, const char *header, const char *text, size_t len)
{
    if (r->line + r->npending >= r->cfg->agent_log_cap) {
        if (!r->truncated) {
            r->truncated = true;
            r->pending[r->npending] =
                xstrdup("[pulumi-state-agent] log truncated: the deployment's log cap was reached\n");
            r->pheads[r->npending++] = NULL;
            flush_log(r);
        }
        return;
    }
    r->pending[r->npending] = xasprintf("%.*s\n", (int)len, text);
    r->pheads[r->npending] = header ? xstrdup(header) : NULL;
    if (++r->npending == 64)
        flush_log(r);
}

static void say(Runner *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(Runner *r, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_line(r, NULL, buf, n < 0 ? 0 : (size_t)n >= sizeof(buf) ? sizeof(buf) - 1 : (size_t)n);
}

static void heartbeat(Runner *r)
{
    if (mono_ms() - r->last_beat < r->cfg->agent_heartbeat * 1000.0)
        return;
    r->last_beat = mono_ms();
    bool cancel = false;
    if (!deploy_heartbeat(r->db, r->job->id, r->agent, &cancel))
        log_warn("heartbeat not taken");
    if (cancel || stopping)
        r->cancel = true;
}

/* Run argv in dir as a process group of its own, its output logged under header. The exit status
 * (128 + signal when killed), or -1 when it could not start. */
static int run_step(Runner *r, const char *header, char *const argv[], const char *dir, Env *env)
{
    log_line(r, header, "", 0);
    flush_log(r);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawnattr_init(&at);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, env->v);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        say(r, "[pulumi-state-agent] cannot start %s: %s", argv[0], strerror(rc));
        return -1;
    }
    Buf partial;
    buf_init(&partial);
    int stage = 0; /* 0 running, 1 SIGINT sent, 2 SIGTERM sent, 3 SIGKILL sent */
    double signalled = 0;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int n = poll(&p, 1, 500);
        if (n > 0) {
            char chunk[8192];
            ssize_t got = read(fds[0], chunk, sizeof(chunk));
            if (got <= 0)
                break;
            buf_append(&partial, chunk, (size_t)got);
            char *start = partial.data, *nl;
            while ((nl = memchr(start, '\n', partial.len - (size_t)(start - partial.data)))) {
                log_line(r, NULL, start, (size_t)(nl - start));
                start = nl + 1;
            }
            size_t rest = partial.len - (size_t)(start - partial.data);
            memmove(partial.data, start, rest);
            partial.len = rest;
            flush_log(r);
        }
        heartbeat(r);
        bool over = mono_ms() > r->deadline;
        if ((r->cancel || over) && stage == 0) {
            say(r, "[pulumi-state-agent] %s: interrupting (SIGINT)", over ? "the deployment timed out" : "cancelled");
            kill(-pid, SIGINT);
            stage = 1;
            signalled = mono_ms();
        } else if (stage == 1 && mono_ms() - signalled > 30000) {
            kill(-pid, SIGTERM);
            stage = 2;
            signalled = mono_ms();
        } else if (stage == 2 && mono_ms() - signalled > 10000) {
            kill(-pid, SIGKILL);
            stage = 3;
        }
    }
    if (partial.len)
        log_line(r, NULL, partial.data, partial.len);
    buf_free(&partial);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    kill(-pid, SIGKILL); /* anything the step left behind in its group */
    flush_log(r);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* NAME=value lines a pre-run command appended to the PULUMI_ENV file. */
static void load_pulumi_env(Runner *r, const char *file, Env *env)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
            continue;
        *eq = '\0';
        env_set(env, line, eq + 1);
    }
    fclose(f);
    say(r, "Loading PULUMI_ENV from %s", file);
}

static const char *pulumi_verb(const char *op)
{
    return !strcmp(op, "update") ? "up" : op;
}

/* The plaintext of a SecretValue: a bare string, {"secret": s} or {"value": s}; NULL otherwise. */
static const char *secret_value(const json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    const char *s = json_string_value(json_object_get(v, "secret"));
    return s ? s : json_string_value(json_object_get(v, "value"));
}

/* Set genv up for the gitAuth of the deployment (accessToken, basicAuth or sshAuth): by
 * configuration in the environment and files in work, never on a command line or in the log. */
static bool git_credentials(const json_t *auth, const char *work, Env *genv)
{
    const char *token = secret_value(json_object_get(auth, "accessToken"));
    const json_t *basic = json_object_get(auth, "basicAuth"), *ssh = json_object_get(auth, "sshAuth");
    char *pair = NULL;
    if (token && *token)
        pair = xasprintf("x-access-token:%s", token);
    else if (basic && secret_value(json_object_get(basic, "userName")) &&
             secret_value(json_object_get(basic, "password")))
        pair = xasprintf("%s:%s", secret_value(json_object_get(basic, "userName")),
                         secret_value(json_object_get(basic, "password")));
    if (pair) {
        char *b64 = b64_encode((const unsigned char *)pair, strlen(pair));
        char *hdr = xasprintf("Authorization: Basic %s", b64);
        env_set(genv, "GIT_CONFIG_COUNT", "1");
        env_set(genv, "GIT_CONFIG_KEY_0", "http.extraHeader");
        env_set(genv, "GIT_CONFIG_VALUE_0", hdr);
        OPENSSL_cleanse(pair, strlen(pair));
        OPENSSL_cleanse(b64, strlen(b64));
        OPENSSL_cleanse(hdr, strlen(hdr));
        free(pair);
        free(b64);
        free(hdr);
    }
    const char *key = ssh ? secret_value(json_object_get(ssh, "sshPrivateKey")) : NULL;
    if (!key || !*key)
        return true;
    char path[4200], askpass[4200];
    snprintf(path, sizeof(path), "%s/ssh-key", work);
    snprintf(askpass, sizeof(askpass), "%s/ssh-askpass", work);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    size_t len = strlen(key);
    bool ok = write(fd, key, len) == (ssize_t)len && (key[len - 1] == '\n' || write(fd, "\n", 1) == 1);
    ok = close(fd) == 0 && ok;
    const char *pass = secret_value(json_object_get(ssh, "password"));
    if (ok && pass && *pass) {
        /* ssh asks the askpass program for the passphrase; it prints it from the environment. */
        fd = open(askpass, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
        static const char script[] = "#!/bin/sh\nprintf '%s\\n' \"$PULUMI_STATE_SSH_PASSPHRASE\"\n";
        ok = fd >= 0 && write(fd, script, sizeof(script) - 1) == (ssize_t)(sizeof(script) - 1);
        ok = fd >= 0 && close(fd) == 0 && ok;
        env_set(genv, "PULUMI_STATE_SSH_PASSPHRASE", pass);
        env_set(genv, "SSH_ASKPASS", askpass);
        env_set(genv, "SSH_ASKPASS_REQUIRE", "force");
        env_set(genv, "DISPLAY", ":0");
    }
    char *cmd = xasprintf("ssh -i '%s' -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new%s", path,
                          pass && *pass ? "" : " -o BatchMode=yes");
    env_set(genv, "GIT_SSH_COMMAND", cmd);
    free(cmd);
    return ok;
}

/* Run job to its end; the deployment's final status. */
static void run_job(const Config *cfg, const char *agent, DeployJob *job)
{
    Db *db = db_open(cfg->database);
    if (!db)
        _exit(1);
    char ctx[64];
    snprintf(ctx, sizeof(ctx), "deployment %.8s", job->id);
    log_set_context(ctx);
    Runner r = {.cfg = cfg,
                .db = db,
                .job = job,
                .agent = agent,
                .last_beat = mono_ms(),
                .deadline = mono_ms() + cfg->agent_timeout * 1000.0};
    char *full = xasprintf("%s/%s/%s", job->org, job->project, job->stack);
    char *tname = xasprintf("deploy-%s", job->id);
    char *token = NULL;
    ApiError e;
    const char *status = "failed", *reason = NULL;
    int code = -1;
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/pulumi-deploy-XXXXXX", cfg->agent_workdir);
    char *work = mkdtemp(tmpl);
    Env env = {0};
    if (!token_create(db, tname, ROLE_WRITE, full, cfg->agent_timeout + 600, agent, &token, &e) ||
        !deploy_set_token(db, job->id, tname)) {
        reason = "could not mint the deployment's token";
        goto done;
    }
    if (!work) {
        reason = "could not make the working directory";
        goto done;
    }
    char home[4200], src[4300], envfile[4300], dir[4900];
    snprintf(home, sizeof(home), "%s/home", work);
    snprintf(src, sizeof(src), "%s/source", work);
    snprintf(envfile, sizeof(envfile), "%s/PULUMI_ENV", work);
    mkdir(home, 0700);
    /* The environment: what the configuration passes on, what Pulumi Deployments sets, the user's. */
    char *names = xstrdup(cfg->agent_pass_env), *save = NULL;
    for (char *n = strtok_r(names, " ,", &save); n; n = strtok_r(NULL, " ,", &save))
        if (getenv(n))
            env_set(&env, n, getenv(n));
    free(names);
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", job->version);
    env_set(&env, "HOME", home);
    /* The CLI finds its home through the password database, not $HOME: without its own
     * PULUMI_HOME every run on this host would share one credentials.json (and one run's token
     * would end up in another's requests). */
    char phome[4300];
    snprintf(phome, sizeof(phome), "%s/.pulumi", home);
    env_set(&env, "PULUMI_HOME", phome);
    env_set(&env, "PULUMI_ENV", envfile);
    env_set(&env, "PULUMI_BACKEND_URL", cfg->public_url);
    env_set(&env, "PULUMI_ACCESS_TOKEN", token);
    env_set(&env, "PULUMI_SKIP_UPDATE_CHECK", "true");
    env_set(&env, "PULUMI_CI_SYSTEM", "pulumi-state");
    env_set(&env, "PULUMI_CI_BUILD_ID", job->id);
    env_set(&env, "PULUMI_CI_BUILD_NUMBER", vbuf);
    env_set(&env, "PULUMI_CI_ORGANIZATION", job->org);
    env_set(&env, "PULUMI_CI_PROJECT", job->project);
    env_set(&env, "PULUMI_CI_STACK", job->stack);
    env_set(&env, "PULUMI_CI_OPERATION", job->operation);
    const char *k;
    json_t *v;
    json_object_foreach(job->env, k, v)
    {
        if (json_is_string(v))
            env_set(&env, k, json_string_value(v));
    }
    /* The clone alone gets the git credentials (the later steps and the program do not). */
    env_set(&env, "GIT_TERMINAL_PROMPT", "0");
    Env genv = {0};
    for (int g = 0; g < env.n; g++) {
        char *eq = strchr(env.v[g], '=');
        char *name = xstrndup(env.v[g], (size_t)(eq - env.v[g]));
        env_set(&genv, name, eq + 1);
        free(name);
    }
    if (!git_credentials(job->git_auth, work, &genv)) {
        say(&r, "[pulumi-state-agent] the git credentials could not be set up");
        reason = "the git credentials could not be set up";
        env_free(&genv);
        goto done;
    }
    say(&r, "[pulumi-state-agent] deployment %s (#%d): pulumi %s of %s on agent %s", job->id, job->version,
        job->operation, full, agent);
    int rc;
    if (*job->commit) {
        char *init[] = {"git", "init", "-q", src, NULL};
        char *fetch[] = {"git", "-C", src, "fetch", "-q", "--depth", "1", "--", job->repo_url, job->commit, NULL};
        char *co[] = {"git", "-C", src, "checkout", "-q", "FETCH_HEAD", NULL};
        rc = run_step(&r, "Get source", init, work, &genv);
        if (rc == 0)
            rc = run_step(&r, "Get source", fetch, work, &genv);
        if (rc == 0)
            rc = run_step(&r, "Get source", co, work, &genv);
    } else if (*job->branch) {
        const char *b = !strncmp(job->branch, "refs/heads/", 11) ? job->branch + 11 : job->branch;
        char *clone[] = {"git", "clone", "-q", "--depth", "1", "--branch", (char *)b, "--", job->repo_url, src, NULL};
        rc = run_step(&r, "Get source", clone, work, &genv);
    } else {
        char *clone[] = {"git", "clone", "-q", "--depth", "1", "--", job->repo_url, src, NULL};
        rc = run_step(&r, "Get source", clone, work, &genv);
    }
    env_free(&genv);
    char keyfile[4300];
    snprintf(keyfile, sizeof(keyfile), "%s/ssh-key", work);
    unlink(keyfile); /* the program that runs next does not get the key */
    snprintf(keyfile, sizeof(keyfile), "%s/ssh-askpass", work);
    unlink(keyfile);
    if (rc != 0) {
        say(&r, "[pulumi-state-agent] the repository %s could not be cloned (exit %d)", job->repo_url, rc);
        reason = "the repository could not be cloned";
        code = rc;
        goto done;
    }
    snprintf(dir, sizeof(dir), "%s/%s", src, job->repo_dir);
    size_t i;
    json_t *cmd;
    json_array_foreach(job->pre_run, i, cmd)
    {
        char header[64];
        snprintf(header, sizeof(header), "Pre-run command %zu", i + 1);
        char *argv[] = {"sh", "-c", (char *)json_string_value(cmd), NULL};
        rc = run_step(&r, header, argv, dir, &env);
        if (rc != 0 || r.cancel) {
            reason = r.cancel ? "cancelled" : "a pre-run command failed";
            code = rc;
            goto done;
        }
        load_pulumi_env(&r, envfile, &env);
    }
    char header[64];
    snprintf(header, sizeof(header), "pulumi %s", job->operation);
    char *argv[12];
    int a = 0;
    argv[a++] = "pulumi";
    argv[a++] = (char *)pulumi_verb(job->operation);
    argv[a++] = "--non-interactive";
    if (strcmp(job->operation, "preview") != 0)
        argv[a++] = "--yes";
    argv[a++] = "--stack";
    argv[a++] = full;
    argv[a] = NULL;
    rc = r.cancel ? 130 : run_step(&r, header, argv, dir, &env);
    code = rc;
    if (!deploy_link_update(db, job->id))
        log_warn("could not link the update");
    status = rc == 0 ? "succeeded" : r.cancel ? "cancelled" : "failed";
    if (rc != 0)
        reason = r.cancel ? "cancelled" : "pulumi exited with an error";
done:
    if (!strcmp(status, "failed") && r.cancel)
        status = "cancelled";
    say(&r, "[pulumi-state-agent] deployment %s %s%s%s", job->id, status, reason ? ": " : "", reason ? reason : "");
    flush_log(&r);
    if (!deploy_finish(db, job->id, status, code, reason))
        log_error("could not record the end of the deployment");
    if (work)
        nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    env_free(&env);
    free(full);
    free(tname);
    db_close(db);
    _exit(0);
}

/* ---- the agent ---- */

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    int rc = config_args(argc, argv, "pulumi-state-agent", PACKAGE_VERSION, &conf_path);
    if (rc >= 0)
        return rc;
    log_set_program("pulumi-state-agent");
    Config cfg;
    char err[512];
    static unsigned char master[CRYPTO_KEY_LEN], old_master[CRYPTO_KEY_LEN];
    if (!config_load(&cfg, conf_path, err, sizeof(err))) {
        fprintf(stderr, "pulumi-state-agent: %s\n", err);
        return 1;
    }
    db_set_prepared(cfg.prepared_statements);
    if (!strcmp(cfg.log_level, "debug"))
        log_set_level(LOG_DEBUG);
    log_set_json(!strcmp(cfg.log_format, "json"));
    if (!log_set_file(cfg.log_file)) {
        fprintf(stderr, "pulumi-state-agent: cannot open the log file %s\n", cfg.log_file);
        return 1;
    }
    if (!crypto_load_key(cfg.master_key, cfg.master_key_file, master, NULL)) {
        fprintf(stderr, "pulumi-state-agent: a master key is required (PULUMI_STATE_MASTER_KEY[_FILE])\n");
        return 1;
    }
    bool have_old = crypto_load_key(cfg.old_master_key, cfg.old_master_key_file, old_master, NULL);
    if (!*cfg.public_url) {
        fprintf(stderr, "pulumi-state-agent: PULUMI_STATE_PUBLIC_URL (the URL clients log in to) is required\n");
        return 1;
    }
    char host[256] = "agent";
    gethostname(host, sizeof(host) - 1);
    char agent[300];
    snprintf(agent, sizeof(agent), "%s:%d", host, (int)getpid());
    Db *db = db_open(cfg.database);
    Listener *l = cfg.agent_listen ? listener_open(cfg.database) : NULL;
    if (!db || (cfg.agent_listen &&
                (!l || !listener_listen(l, DEPLOY_CHANNEL_QUEUE) || !listener_listen(l, DEPLOY_CHANNEL_CANCEL)))) {
        fprintf(stderr, "pulumi-state-agent: cannot connect to the database\n");
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("started as %s: %d jobs at once, %s; repositories: https://, ssh://%s", agent, cfg.agent_jobs,
             cfg.public_url, cfg.deploy_allow_file_urls ? ", file:// (enabled)" : "");
    pid_t *runners = xcalloc((size_t)cfg.agent_jobs, sizeof(pid_t));
    double last_sweep = 0, stop_at = 0, last_prune = 0;
    for (;;) {
        int running = 0;
        for (int i = 0; i < cfg.agent_jobs; i++) {
            if (runners[i] > 0 && waitpid(runners[i], NULL, WNOHANG) == runners[i])
                runners[i] = 0;
            running += runners[i] > 0;
        }
        if (stopping) {
            if (!running)
                break;
            if (stop_at == 0) {
                stop_at = mono_ms();
                log_info("stopping: %d deployments may run %d s more", running, cfg.agent_stop_grace);
            }
            /* Past the grace period, the runners cancel what they run (SIGINT to the CLI first). */
            if (mono_ms() - stop_at > cfg.agent_stop_grace * 1000.0)
                for (int i = 0; i < cfg.agent_jobs; i++)
                    if (runners[i] > 0)
                        kill(runners[i], SIGTERM);
        }
        if (mono_ms() - last_sweep > cfg.agent_heartbeat * 1000.0) {
            last_sweep = mono_ms();
            PGresult *lk =
                db_exec(db, "SELECT pg_try_advisory_lock(hashtextextended('pulumi-state:sweep', 0))", 0, NULL, false);
            if (lk && PQgetvalue(lk, 0, 0)[0] == 't') {
                if (deploy_rescue(db, cfg.agent_dead_after) < 0 || deploy_expire_queued(db, 7) < 0 ||
                    update_reap_expired(db) < 0)
                    log_warn("the sweep failed; trying again later");
                if (!db_run(db, "SELECT pg_advisory_unlock(hashtextextended('pulumi-state:sweep', 0))", 0, NULL))
                    log_warn("could not release the sweep lock");
            }
            PQclear(lk);
        }
        if (cfg.prune_interval > 0 && !stopping && mono_ms() - last_prune > cfg.prune_interval * 1000.0) {
            last_prune = mono_ms();
            PGresult *lk =
                db_exec(db, "SELECT pg_try_advisory_lock(hashtextextended('pulumi-state:prune', 0))", 0, NULL, false);
            if (lk && PQgetvalue(lk, 0, 0)[0] == 't') {
                long long n = retention_prune(db, &cfg, NULL, NULL);
                if (n < 0)
                    log_warn("the prune failed; trying again later");
                else if (n > 0)
                    log_info("pruned %lld rows (retain_* settings)", n);
                if (!db_run(db, "SELECT pg_advisory_unlock(hashtextextended('pulumi-state:prune', 0))", 0, NULL))
                    log_warn("could not release the prune lock");
            }
            PQclear(lk);
        }
        while (!stopping && running < cfg.agent_jobs) {
            DeployJob job;
            if (!db_ensure(db) || deploy_claim(db, master, have_old ? old_master : NULL, agent, &job) != 1)
                break;
            pid_t pid = fork();
            if (pid == 0) {
                /* A runner does not outlive its agent: a crashed agent's deployments are then failed
                 * by the others once its heartbeats stop. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                run_job(&cfg, agent, &job);
            }
            for (int i = 0; i < cfg.agent_jobs; i++)
                if (runners[i] <= 0) {
                    runners[i] = pid;
                    break;
                }
            log_info("deployment %s claimed (runner %d)", job.id, (int)pid);
            deploy_job_free(&job);
            running++;
        }
        const char *ch, *payload;
        if (!l) {
            poll(NULL, 0, 1000); /* no LISTEN: poll the queue every second */
            continue;
        }
        ListenResult lr = listener_wait(l, 1000, &ch, &payload);
        if (lr == LISTEN_DOWN)
            log_warn("listener down; polling");
    }
    log_info("stopped");
    listener_close(l);
    db_close(db);
    free(runners);
    OPENSSL_cleanse(master, sizeof(master));
    config_free(&cfg);
    return 0;
}
