/*
 * cli_serve.h - `tern serve`: run the mail server in the foreground.
 */
#ifndef TERN_CLI_SERVE_H
#define TERN_CLI_SERVE_H

/* cli_serve - returns the exit status: 0 after a clean shutdown, 1 if it could not start. */
int cli_serve(const char *config_path);

#endif
