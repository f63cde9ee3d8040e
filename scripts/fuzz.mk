# The troupe sources the fuzz targets link, compiled with clang for libFuzzer (coverage, ASan,
# UBSan) into one archive; incremental (-MMD). Used by scripts/fuzz.sh:
#   make -f scripts/fuzz.mk OUT=build-fuzz CXX=clang++ -j2
# model/chat_template/ is left out: no target needs it, and clang-14 cannot capture its structured
# bindings in lambdas (a C++20 feature from clang-16 on).
OUT ?= build-fuzz
CXX ?= clang++
FLAGS = -std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
        -fno-sanitize-recover=undefined -I.
SRCS := $(wildcard kernels/*.cpp comm/*.cpp model/*.cpp model/tokenizer/*.cpp sched/*.cpp actors/*.cpp)
OBJS := $(SRCS:%.cpp=$(OUT)/obj/%.o)

$(OUT)/libtroupe_fuzz.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(FLAGS) -MMD -MP -c $< -o $@

-include $(OBJS:.o=.d)
