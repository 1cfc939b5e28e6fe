/* Runs every corpus file through LLVMFuzzerTestOneInput without libFuzzer, so that gcc builds can replay the
 * seed corpora as ordinary tests. Each file runs in a child process: a crash or sanitizer report fails that
 * file and the others still run. Usage: replay <file or directory>... */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int passed, failed;

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            fclose(f);
            return -ENOMEM;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        cap *= 2;
        uint8_t *bigger = realloc(buf, cap);
        if (bigger == NULL)
            free(buf);
        buf = bigger;
    }
    int err = ferror(f) ? -EIO : 0;
    fclose(f);
    if (err < 0) {
        free(buf);
        return err;
    }
    *data = buf;
    *size = len;
    return 0;
}

static void run_file(const char *path)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "FAIL %s: fork: %s\n", path, strerror(errno));
        failed++;
        return;
    }
    if (pid == 0) {
        uint8_t *data = NULL;
        size_t size = 0;
        int rc = read_file(path, &data, &size);
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", path, strerror(-rc));
            _exit(2);
        }
        /* An exact-size heap copy, so that ASan catches reads past the end as libFuzzer would. */
        uint8_t *exact = malloc(size ? size : 1);
        if (exact == NULL)
            _exit(2);
        if (size > 0)
            memcpy(exact, data, size);
        free(data);
        LLVMFuzzerTestOneInput(exact, size);
        free(exact);
        exit(0); /* exit(), not _exit(): LeakSanitizer runs at exit */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            break;
        }
    }
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        passed++;
    } else {
        failed++;
        if (status != -1 && WIFSIGNALED(status))
            fprintf(stderr, "FAIL %s: signal %d\n", path, WTERMSIG(status));
        else
            fprintf(stderr, "FAIL %s: exit status %d\n", path, status == -1 ? -1 : WEXITSTATUS(status));
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
        failed++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    DIR *dir = opendir(path);
    if (dir == NULL) {
        fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
        failed++;
        return;
    }
    /* Sorted, so that runs are reproducible. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **bigger = realloc(names, cap * sizeof *names);
            if (bigger == NULL)
                abort();
            names = bigger;
        }
        size_t len = strlen(path) + 1 + strlen(e->d_name) + 1;
        names[n] = malloc(len);
        if (names[n] == NULL)
            abort();
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(dir);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        run_path(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <corpus file or directory>...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    printf("%d passed, %d failed\n", passed, failed);
    /* An empty corpus is a broken test setup, not a pass. */
    return (failed > 0 || passed == 0) ? 1 : 0;
}
