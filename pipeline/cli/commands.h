/* commands.h: the subcommands of the unisparse executable. Each takes argv from its own name. */
#ifndef UNISPARSE_CLI_COMMANDS_H
#define UNISPARSE_CLI_COMMANDS_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} us_command;

int cmd_attn(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_summarize(int argc, char **argv);
int cmd_vqa(int argc, char **argv);

#endif
