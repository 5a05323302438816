#include "supervision_fixture.hpp"
