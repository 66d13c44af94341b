// Test helpers; see test_support.h.
#include "test_support.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

extern char** environ;

namespace stackwatch::symbolizer::testing {

std::string fixture_bin(const std::string& name) { return std::string(SYMFIX_BIN_DIR) + "/" + name; }
std::string fixture_src(const std::string& name) { return std::string(SYMFIX_SRC_DIR) + "/" + name; }

uint32_t marker_line(const std::string& source, const std::string& marker) {
  std::ifstream in(source);
  if (!in) throw std::runtime_error("cannot read " + source);
  std::string line;
  uint32_t number = 0, found = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find(marker) == std::string::npos) continue;
    if (found != 0) throw std::runtime_error(marker + " appears twice in " + source);
    found = number;
  }
  if (found == 0) throw std::runtime_error(marker + " not in " + source);
  return found;
}

namespace {
struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};
struct Opened {
  int fd = -1;
  std::unique_ptr<Elf, ElfCloser> elf;
  ~Opened() { close(fd); }
};
std::unique_ptr<Opened> open_elf(const std::string& path) {
  elf_version(EV_CURRENT);
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  auto o = std::make_unique<Opened>();
  o->fd = fd;
  o->elf.reset(elf_begin(fd, ELF_C_READ, nullptr));
  if (!o->elf) throw std::runtime_error("not ELF: " + path);
  return o;
}
}  // namespace

SymbolRange elf_symbol(const std::string& path, const std::string& name) {
  auto o = open_elf(path);
  for (uint32_t type : {SHT_SYMTAB, SHT_DYNSYM}) {
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(o->elf.get(), scn)) != nullptr) {
      GElf_Shdr shdr;
      gelf_getshdr(scn, &shdr);
      if (shdr.sh_type != type) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
        GElf_Sym sym;
        gelf_getsym(data, static_cast<int>(i), &sym);
        const char* n = elf_strptr(o->elf.get(), shdr.sh_link, sym.st_name);
        if (n != nullptr && name == n && sym.st_value != 0) return {sym.st_value, sym.st_size};
      }
    }
  }
  throw std::runtime_error("no symbol " + name + " in " + path);
}

ExecSegment exec_segment(const std::string& path) {
  auto o = open_elf(path);
  size_t n = 0;
  elf_getphdrnum(o->elf.get(), &n);
  for (size_t i = 0; i < n; ++i) {
    GElf_Phdr p;
    gelf_getphdr(o->elf.get(), static_cast<int>(i), &p);
    if (p.p_type == PT_LOAD && (p.p_flags & PF_X)) return {p.p_vaddr, p.p_offset};
  }
  throw std::runtime_error("no executable segment in " + path);
}

Child::Child(const std::vector<std::string>& argv) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  in_ = in_pipe[1];
  out_ = out_pipe[0];
  if (rc != 0) throw std::runtime_error("cannot run " + argv[0]);
}

Child::~Child() {
  kill_and_reap();
  if (in_ >= 0) close(in_);
  if (out_ >= 0) close(out_);
}

std::string Child::read_line() {
  std::string line;
  char c;
  while (read(out_, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

void Child::kill_and_reap() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string run_command(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(command.c_str(), "r"), pclose);
  if (!p) throw std::runtime_error("cannot run " + command);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  return out;
}

}  // namespace stackwatch::symbolizer::testing
