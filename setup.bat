@echo off
rem First run without make on Windows: virtualenv, install, a local .env, migrate, demo data,
rem then the API on http://127.0.0.1:8000. The same as `make run`. Linux and macOS: setup.sh.
rem
rem   setup.bat            set up and run
rem   setup.bat --no-run   set up only
rem
rem Environment: PYTHON (py -3, else python), VENV (.venv), PORT (8000), SEED_DEMO_PASSWORD.
setlocal
cd /d "%~dp0"

if not defined VENV set "VENV=.venv"
if not defined PORT set "PORT=8000"
set "RUN_SERVER=1"
if /i "%~1"=="--no-run" set "RUN_SERVER=0"

if exist "%VENV%\Scripts\python.exe" goto :install
echo setup.bat: creating the virtualenv %VENV%
if defined PYTHON goto :make_venv
set "PYTHON=python"
where py >nul 2>nul
if not errorlevel 1 set "PYTHON=py -3"
:make_venv
%PYTHON% -c "import sys; sys.exit(sys.version_info < (3, 11))" || goto :old_python
%PYTHON% -m venv "%VENV%" || goto :fail
"%VENV%\Scripts\python.exe" -m pip install --quiet --upgrade pip || goto :fail

:install
echo setup.bat: installing requirements
"%VENV%\Scripts\python.exe" -m pip install --quiet -r requirements-dev.txt || goto :fail

rem A local .env for development. .env.example is the production template: DJANGO_DEBUG=false,
rem a placeholder secret, the compose database host. Copying it here would stop the local server.
if exist .env goto :env_ready
> .env echo # Local development, written by setup.bat. For production and docker-compose, start
>> .env echo # from .env.example instead: copy .env.example .env, then fill in the secrets.
>> .env echo DJANGO_DEBUG=true
echo setup.bat: wrote a development .env with DJANGO_DEBUG=true and SQLite
:env_ready

rem Local development whatever .env says: debug on, and SQLite instead of the compose database
rem host "db", which only exists inside Docker.
set "DJANGO_DEBUG=true"
findstr /r /c:"^DATABASE_URL=.*@db[:/]" .env >nul 2>nul
if errorlevel 1 goto :migrate
echo setup.bat: .env points DATABASE_URL at docker-compose's db; using SQLite for this run
set "DATABASE_URL=sqlite:///%CD:\=/%/db.sqlite3"

:migrate
if "%RUN_SERVER%"=="0" goto :setup_only
rem As `make run`: migrate, seed, serve, with the Stripe stand-in when no key is set.
echo setup.bat: API on http://127.0.0.1:%PORT%/ - docs: /swagger/, admin: /admin/; Ctrl-C stops it
"%VENV%\Scripts\python.exe" scripts\dev_server.py
goto :eof

:setup_only
"%VENV%\Scripts\python.exe" manage.py migrate --noinput || goto :fail
"%VENV%\Scripts\python.exe" manage.py seed_demo || goto :fail
goto :eof

:old_python
echo setup.bat: Python 3.11 or newer is needed - install it from python.org or set PYTHON 1>&2
exit /b 1

:fail
echo setup.bat: failed, see the messages above 1>&2
exit /b 1
