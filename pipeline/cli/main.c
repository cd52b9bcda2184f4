/* main.c: the unisparse executable: `unisparse <command> [options]`. */
#include "blas_env.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const us_command commands[] = {
    {"attn", "run attention methods on one input and report speed and fidelity", cmd_attn},
    {"generate", "generate text with Gemma 3 (GGUF) on the CPU", cmd_generate},
    {"eval", "score the sparse methods against dense on long-context tasks (RULER-style, video needle)", cmd_eval},
    {"vqa", "answer questions about a video with a Gemma 3 vision checkpoint", cmd_vqa},
    {"summarize", "summarize a batch of documents, however long, into one file each", cmd_summarize},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: unisparse <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`unisparse <command> --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    us_blas_env_fix(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("unisparse 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "unisparse: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
