// The `zt` command line.
#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "usage: zt <command> ...\n");
  return 2;
}
