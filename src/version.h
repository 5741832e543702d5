#ifndef CHORUS_VERSION_H
#define CHORUS_VERSION_H

#define CHORUS_VERSION "0.1.0"

#endif
