/* The pod sandbox's process for the CRI tests (what Kubernetes' pause
 * image runs): it holds the pod's namespaces, reaps the orphans of a shared
 * pid namespace, and exits on SIGINT or SIGTERM. Built static at test time
 * (tests/e2e/test_cri.py) into a one-file image: no image is pulled. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(void)
{
    struct sigaction sa = {0};

    sa.sa_handler = on_term;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;)
        pause();
}
